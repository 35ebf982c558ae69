#!/usr/bin/env python
"""Coverage-guided fuzzer (atheris / libFuzzer) for the KB file reader.

Usage (it needs ``pip install atheris``; run it by path, from anywhere; it is
not a pytest module, so the test suite does not collect it)::

    python tests/fuzz/fuzz_kb_format.py --seconds 600 [--corpus DIR] [--mode mixed]
    python tests/fuzz/fuzz_kb_format.py --reproduce FILE [FILE ...]

What is fuzzed: ``InMemoryLookupKB(vocab, 0).from_bytes(data)`` on arbitrary
bytes (KB format version 3; version 2 files, which have no entity relations,
and version 1 files, which have no alias index either)
and, when that accepts them, the whole read API on the result
(``get_entity_strings``, ``get_alias_strings``, ``get_alias_candidates`` of every
alias and of random strings, ``Candidate.entity_`` / ``alias_`` /
``entity_vector``, ``lookup_aliases``, ``get_entity_rows``, ``get_vector(s)``,
``get_prior_prob``, ``get_parents``, ``get_ancestors``, ``ancestor_rows``,
``get_entity_id``, ``copy()``, ``to_bytes()``), the alias
index (``kb.alias_index.key_rows``, ``gather``, ``search`` at three
thresholds, ``copy``) and the candidate generators of
``entity_linker.candidates`` (exact, normalized, fuzzy, cascade; on a KB
without index they build one in memory from the mapped arrays) and
``kb.lookup_normalized`` (three limit / by_prior / discount settings), plus
``entity_linker.kb.format.validate_buffer(data, "fuzz", deep=True)``.

Outcomes:

* expected: ``KBFormatError`` (the file is rejected), ``IndexError`` from
  ``get_entity_id`` with an out-of-range row, and other ``KBError``
  subclasses raised by deliberate validation (counted as "tolerated");
* finding: any other exception (the traceback is saved with the input under
  ``<work>/findings``), a ``MemoryError`` (the worker runs under an address-space
  limit, ``--memory-mb`` above its size after start-up, so a huge allocation
  fails instead of succeeding lazily), ``to_bytes()`` differing from the input;
* crash / hang / out-of-memory: the libFuzzer worker dies on a signal, exceeds
  ``--timeout`` seconds on one input, or exceeds its RSS limit. libFuzzer saves
  the input as ``crash-*``, ``timeout-*`` or ``oom-*``; the supervisor counts it
  and restarts the worker until ``--seconds`` are used up;
* validation gap (reported separately): ``validate_buffer(deep=True)`` accepted
  the input but reading it failed or was inconsistent (a read raised, a stored
  hash is unreachable by probing, a string does not hash to its stored hash,
  ``copy()`` does not round-trip, ...), or accepted an input that ``from_bytes``
  rejects.

Mutation (``--mode``): ``plain`` is libFuzzer's byte-level mutator alone; most
of its mutations die at the header CRC-32. ``structured`` knows the layout: it
rewrites header fields (counts, vector length, hash table lengths, file size,
flags, section offsets, lengths, ids, CRCs) with boundary values and recomputes
the header CRC; it edits section contents element by element (by dtype: the
string offsets are uint32 when header flag 1 is set) and recomputes the section
CRC, so mutants also pass deep validation's checksums; and it re-lays out whole
files after adding or dropping entities, aliases or candidate slots, rebuilding
the hash tables (uint32 slot tables in version 2, (key, row + 1) cells in
version 1: misplaced, repeated, full, too small, or broken: a key moved off its
probe path, two slots swapped, a row past the end), changing the vector length,
flipping the narrow string offsets flag (with the sections re-encoded, or the
flag alone, or one section alone: a flag that disagrees with the section sizes
must be rejected; unknown flag bits too), and editing the alias index (its JSON
settings, dropping keys with their slots, unsorted / duplicate / out-of-range
postings, trigram counts that are zero, huge or out of order, dropping the
whole index or its trigram part, offsets that skip or go back, rebuilt index
tables). ``mixed`` (the default) alternates both. Header offsets follow the
version field: a version 1 mutant keeps its 512-byte header and 13 sections.

Coverage: ``atheris.instrument_imports`` instruments the pure-Python modules
of entity_linker (``kb/format/`` with the header checks and the deep
validation, ``errors.py``, ...) and this harness's read driver, so each new
outcome (which check rejected, which read step raised) is new coverage. The
Cython extensions (``in_memory``, ``candidate``, ``hashing``) are compiled
without sanitizer coverage and are not instrumented: inside them the fuzzer is
blind and relies on the structure-aware mutator to reach their branches.

The seed corpus (written to ``--corpus``) is made in-process; all seeds but
``empty``, ``empty_vec64``, ``empty_wide``, ``small_unicode_no_index(_wide)``
and ``small_unicode_v1`` hold an alias index (``kb.build_alias_index()``
before ``to_bytes()``): an empty KB (without and with index), an empty KB with
vectors of length 64, a small KB with unicode entity ids and aliases (without
index, as a version 1 file, and with aliases that share a normalised key or
normalise to nothing; with the trigram index, without it, and with its own
word expansions), KBs from ``InMemoryLookupKB.from_arrays`` with 0-candidate
aliases and vector lengths 0, 1 and 7 (place names that normalise alike or are
misspelt), a KB grown with ``append_alias`` (non-compact slots) and a
``copy()`` of a loaded KB. Most seeds have uint32 string offsets (header flag
1, what the writer picks); the ``*_wide`` seeds are written with
``format.write(..., narrow_strings=False)`` (uint64 offsets, flag 0), and
``small_unicode_v1`` is a version 1 file (cells, no flags).

At the end the supervisor prints run time, executions, exec/s, crashes, hangs,
out-of-memory kills, findings and validation gaps; it exits 1 if any of these
is non-zero.
"""

import argparse
import faulthandler
import hashlib
import io
import json
import mmap
import os
import random
import re
import resource
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from pathlib import Path

import numpy

# Filled in by _import_target() (instrumented in the worker, plain elsewhere).
F = None  # entity_linker.kb.format
G = None  # entity_linker.candidates
KBError = KBFormatError = InMemoryLookupKB = hash_string = AliasNormalizer = None
VOCAB = None

# --------------------------------------------------------------------------- layout
# Mirrors entity_linker.kb.format (checked against it in _check_layout()).
FORMAT_VERSION = 4
# Header size per format version; the CRC is the last 4 bytes.
HEADER_SIZES = {1: 512, 2: 1024, 3: 1024, 4: 1024}
HEADER_SIZE = HEADER_SIZES[FORMAT_VERSION]
CRC_OFFSET = HEADER_SIZE - 4
ALIGNMENT = 64
HEAD_FIELDS = (  # name, struct code (little-endian, no padding)
    ("magic", "8s"),
    ("version", "I"),
    ("endian", "I"),
    ("file_size", "Q"),
    ("n_entities", "Q"),
    ("n_aliases", "Q"),
    ("n_candidates", "Q"),
    ("vector_length", "Q"),
    ("entity_cells_length", "Q"),
    ("alias_cells_length", "Q"),
    ("n_sections", "I"),
    ("flags", "I"),
)
ENTRY_FIELDS = (("id", "I"), ("crc", "I"), ("offset", "Q"), ("length", "Q"), ("reserved", "Q"))
# Version 2 layout. The hash tables are uint32 slot tables (row + 1, the key is
# the row's stored hash); version 1 stored (key, row + 1) 16-byte cells there.
SECTIONS = (
    ("entity_hashes", "<u8"),
    ("entity_freqs", "<f4"),
    ("vectors", "<f4"),
    ("entity_string_offsets", "<u8"),  # "<u4" when FLAG_NARROW_STRING_OFFSETS
    ("entity_strings", "u1"),
    ("alias_hashes", "<u8"),
    ("alias_offsets", "<u8"),
    ("alias_string_offsets", "<u8"),  # "<u4" when FLAG_NARROW_STRING_OFFSETS
    ("alias_strings", "u1"),
    ("candidate_rows", "<u4"),
    ("candidate_priors", "<f4"),
    ("entity_slots", "<u4"),
    ("alias_slots", "<u4"),
    # the alias index (all empty when the KB has none)
    ("index_config", "u1"),
    ("norm_hashes", "<u8"),
    ("norm_offsets", "<u8"),
    ("norm_entity_rows", "<u4"),
    ("norm_priors", "<f4"),
    ("norm_alias_rows", "<u4"),
    ("norm_slots", "<u4"),
    ("norm_gram_counts", "<u4"),
    ("gram_keys", "<u8"),
    ("gram_offsets", "<u8"),
    ("gram_postings", "<u4"),
    ("gram_slots", "<u4"),
)
SECTIONS_V2 = SECTIONS
# Version 3: the entity relations (CSR of parent rows; both empty without any).
SECTIONS_V3 = SECTIONS_V2 + (("parent_offsets", "<u8"), ("parent_rows", "<u4"))
# Version 4: the entity names (CSR of UTF-8 bytes; both empty without any).
SECTIONS = SECTIONS_V3 + (("name_offsets", "<u8"), ("name_strings", "u1"))
SECTIONS_V1 = SECTIONS[:11] + (("entity_cells", "<u8"), ("alias_cells", "<u8"))
VERSION_SECTIONS = {1: SECTIONS_V1, 2: SECTIONS_V2, 3: SECTIONS_V3, 4: SECTIONS}
VERSION_N_SECTIONS = {v: len(s) for v, s in VERSION_SECTIONS.items()}
INDEX_NAMES = tuple(name for name, _ in SECTIONS_V2[VERSION_N_SECTIONS[1]:])
# Position in the file of every section name of either version.
SECTION_INDEX = {name: i for layout in VERSION_SECTIONS.values()
                 for i, (name, _) in enumerate(layout)}
DTYPES = {name: numpy.dtype(code) for layout in VERSION_SECTIONS.values()
          for name, code in layout}
FLAG_NARROW_STRING_OFFSETS = 1
VERSION_FLAGS = {1: 0, 2: FLAG_NARROW_STRING_OFFSETS, 3: FLAG_NARROW_STRING_OFFSETS,
                 4: FLAG_NARROW_STRING_OFFSETS}  # the flag bits each version knows
STRING_OFFSETS = ("entity_string_offsets", "alias_string_offsets")
TABLE_KEYS = {"entity": "entity_hashes", "alias": "alias_hashes", "norm": "norm_hashes",
              "gram": "gram_keys"}


def dtype_of(name, flags=0):
    """A section's dtype in a file with these header flags."""
    if name in STRING_OFFSETS and flags & FLAG_NARROW_STRING_OFFSETS:
        return numpy.dtype("<u4")
    return DTYPES[name]


def table_name(kind, version):
    """The hash table section of a kind (entity, alias, norm, gram) in a version."""
    return f"{kind}_cells" if version == 1 else f"{kind}_slots"


class Bodies(list):
    """Section contents in file order, with the version and flags they are encoded for."""

    def __init__(self, items, version=FORMAT_VERSION, flags=0):
        super().__init__(items)
        self.version, self.flags = version, flags


def _offsets(fields):
    result, offset = {}, 0
    for name, code in fields:
        result[name] = (offset, "<" + code)
        offset += struct.calcsize("<" + code)
    return result, offset


HEAD, HEAD_SIZE = _offsets(HEAD_FIELDS)
ENTRY, ENTRY_SIZE = _offsets(ENTRY_FIELDS)
TABLE_OFFSET = HEAD_SIZE


def _check_layout():
    """Fail loudly if the format module and this fuzzer's idea of it disagree."""
    assert F.FORMAT_VERSION == FORMAT_VERSION and F.HEADER_SIZES == HEADER_SIZES
    assert F.HEADER_SIZE == HEADER_SIZE and F._CRC_OFFSET == CRC_OFFSET
    assert F.ALIGNMENT == ALIGNMENT
    assert {v: len(s) for v, s in F.VERSION_SECTIONS.items()} == VERSION_N_SECTIONS
    assert tuple(name for name, _ in F.INDEX_SECTIONS) == INDEX_NAMES
    assert F._HEAD.format.lstrip("<") == "".join(code for _, code in HEAD_FIELDS)
    assert F._SECTION.format.lstrip("<") == "".join(code for _, code in ENTRY_FIELDS)
    assert [(n, numpy.dtype(d)) for n, d in SECTIONS] == list(F.SECTIONS)
    for version, layout in VERSION_SECTIONS.items():
        assert [(n, numpy.dtype(d)) for n, d in layout] == list(F.VERSION_SECTIONS[version])
    assert F.FLAG_NARROW_STRING_OFFSETS == FLAG_NARROW_STRING_OFFSETS
    for name, code in SECTIONS:
        for flags in (0, FLAG_NARROW_STRING_OFFSETS):
            assert F.section_dtype(name, numpy.dtype(code), flags) == dtype_of(name, flags)
    for version, size in HEADER_SIZES.items():
        assert TABLE_OFFSET + VERSION_N_SECTIONS[version] * ENTRY_SIZE <= size - 4


# --------------------------------------------------------------------------- import


def _import_target(instrument):
    """Import entity_linker (instrumented for coverage when ``instrument``)."""
    global F, G, KBError, KBFormatError, InMemoryLookupKB, hash_string, AliasNormalizer, VOCAB
    import spacy.vocab  # not instrumented: keep spaCy out of the coverage map

    if instrument:
        import atheris

        with atheris.instrument_imports(include=["entity_linker"]):
            import entity_linker.candidates as generators
            import entity_linker.errors as errors
            import entity_linker.kb.format as fmt
            from entity_linker.kb import InMemoryLookupKB as KB
            from entity_linker.kb import hash_string as hs
            from entity_linker.kb.normalize import AliasNormalizer as normalizer
    else:
        import entity_linker.candidates as generators
        import entity_linker.errors as errors
        import entity_linker.kb.format as fmt
        from entity_linker.kb import InMemoryLookupKB as KB
        from entity_linker.kb import hash_string as hs
        from entity_linker.kb.normalize import AliasNormalizer as normalizer
    F, G, KBError, KBFormatError = fmt, generators, errors.KBError, errors.KBFormatError
    InMemoryLookupKB, hash_string, AliasNormalizer = KB, hs, normalizer
    VOCAB = spacy.vocab.Vocab()
    _check_layout()
    # numpy's RuntimeWarnings (NaN casts in mutants) and KBWarnings are not outcomes.
    warnings.simplefilter("ignore")


# --------------------------------------------------------------------------- seeds


def indexed(kb, **settings):
    """kb's bytes with an alias index (normalised and, by default, trigram)."""
    kb.build_alias_index(**settings)
    return kb.to_bytes()


def to_version1(data):
    """The version 1 image of a version 2 image without alias index: 512-byte
    header, 13 sections re-packed at 64-aligned offsets after it."""
    if len(data) < HEADER_SIZE or len(data) < get_field(data, "file_size"):
        raise ValueError("not a complete version 2 image")
    fields, bodies = parse(data)
    if any(bodies[VERSION_N_SECTIONS[1]:]):
        raise ValueError("a version 1 file cannot hold the alias index")
    rng = random.Random(0)
    old = Bodies(bodies, 2, bodies.flags)
    v1 = Bodies(bodies[: VERSION_N_SECTIONS[1]], 1, 0)
    for name in STRING_OFFSETS:  # version 1 has no flags: uint64 string offsets
        put_array(v1, name, get_array(old, name))
    for kind in ("entity", "alias"):  # (key, row + 1) cells instead of slots
        length = len(get_array(old, f"{kind}_slots"))
        put_array(v1, f"{kind}_cells", preshed_cells(get_array(old, TABLE_KEYS[kind]), length,
                                                     rng).reshape(-1))
        fields[f"{kind}_cells_length"] = length
    fields["version"], fields["n_sections"], fields["flags"] = 1, VERSION_N_SECTIONS[1], 0
    return bytes(build(fields, v1, rng))


def wide(kb):
    """kb's image with uint64 string offsets (header flag 0)."""
    out = io.BytesIO()
    F.write(out, kb._compact_arrays(), kb.entity_vector_length, narrow_strings=False)
    return out.getvalue()


def make_seeds():
    """Valid KB images of different shapes: {name: bytes}. Most hold an alias index."""
    vocab = VOCAB
    seeds = {"empty": InMemoryLookupKB(vocab, 0).to_bytes()}
    seeds["empty_indexed"] = indexed(InMemoryLookupKB(vocab, 0))
    seeds["empty_vec64"] = InMemoryLookupKB(vocab, 64).to_bytes()
    seeds["empty_wide"] = wide(InMemoryLookupKB(vocab, 0))

    kb = InMemoryLookupKB(vocab, 3)
    kb.add_entity("Q90", 120, [1.0, 0.0, 0.0])
    kb.add_entity("Q830149", 8, [0.0, 1.0, 0.0])
    kb.add_entity("Q_Zürich_é", 3, [0.5, -0.25, 2.0])
    kb.add_entity("Q東京", 50, [0.0, 0.0, 1.0])
    kb.add_entity("Q😀", 1, [-1.0, 1e-3, 7.5])
    kb.add_alias("Paris", ["Q90", "Q830149"], [0.9, 0.1])
    kb.add_alias("Zürich", ["Q_Zürich_é"], [1.0])
    kb.add_alias("東京", ["Q東京", "Q90", "Q😀"], [0.7, 0.2, 0.05])
    kb.add_alias("😀 face", ["Q😀"], [0.5])
    seeds["small_unicode_no_index"] = kb.to_bytes()
    seeds["small_unicode_no_index_wide"] = wide(kb)
    seeds["small_unicode_v1"] = to_version1(seeds["small_unicode_no_index"])
    # Aliases that share a normalised key, and some that normalise to nothing.
    kb.add_alias("PARIS", ["Q830149", "Q90"], [0.6, 0.3])
    kb.add_alias("St. Zürich", ["Q_Zürich_é", "Q90"], [0.5, 0.5])
    kb.add_alias("Saint-Zurich", ["Q90"], [0.8])
    kb.add_alias("...", ["Q90"], [0.1])
    kb.add_alias("'", [], [])
    seeds["small_unicode"] = indexed(kb)
    seeds["small_unicode_wide"] = wide(kb)
    seeds["small_normalised_only"] = indexed(kb, fuzzy=False)
    seeds["small_own_expansions"] = indexed(
        kb, normalizer=AliasNormalizer({"paris": "city of light", "face": "visage"}))

    # Grown with append_alias: the in-memory slots are not compact.
    kb.append_alias("Paris", "Q東京", 0.0)
    kb.append_alias("Zürich", "Q90", 0.0)
    seeds["appended"] = indexed(kb)

    copied = InMemoryLookupKB(vocab, 0).from_bytes(seeds["small_unicode"]).copy()
    seeds["copy_of_loaded"] = copied.to_bytes()
    seeds["copy_of_loaded_wide"] = wide(
        InMemoryLookupKB(vocab, 0).from_bytes(seeds["small_unicode_wide"]).copy())

    seeds["zero_candidates_vec1"] = indexed(InMemoryLookupKB.from_arrays(
        vocab, ["E1", "E2", "E3"], [1, 2, 3], numpy.ones((3, 1), dtype=numpy.float32),
        ["nothing", "one", "none either", "two"], [0, 0, 1, 1, 3], [0, 1, 2], [1.0, 0.5, 0.5],
    ))
    seeds["vec0"] = indexed(InMemoryLookupKB.from_arrays(
        vocab, ["a", "b"], [1, 1], numpy.zeros((2, 0), dtype=numpy.float32),
        ["x", "y"], [0, 2, 2], [0, 1], [0.25, 0.75],
    ))
    rng = numpy.random.default_rng(7)
    n, m, length = 40, 30, 7
    counts = rng.integers(0, 4, size=m)
    offsets = numpy.concatenate([[0], numpy.cumsum(counts)])
    cands = rng.integers(0, n, size=int(offsets[-1]))
    priors = numpy.concatenate([rng.dirichlet(numpy.ones(c)) * 0.99 if c else [] for c in counts])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        places = ["Saint Louis", "St. Louis", "Pittsburgh", "Pittsburg", "Mt. Hood", "Mount Hood"]
        medium = InMemoryLookupKB.from_arrays(
            vocab, [f"Q{i}·{'ß' * (i % 3)}" for i in range(n)], rng.random(n) * 100,
            rng.standard_normal((n, length)).astype(numpy.float32),
            places + [f"alias {i} ñ" for i in range(m - len(places))], offsets, cands, priors,
        )
        seeds["medium_vec7"] = indexed(medium)
        seeds["medium_vec7_wide"] = wide(medium)
    flags = {}
    for name, data in seeds.items():
        flags[name] = F.validate_buffer(data, name, deep=True).flags
    assert {name for name, f in flags.items() if f & FLAG_NARROW_STRING_OFFSETS} == {
        name for name in seeds if not name.endswith(("_wide", "_v1"))}, flags
    return seeds


# --------------------------------------------------------------------------- file model

U64_INTERESTING = (
    0, 1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 65, 255, 256, 511, 512, 4096, 65535, 65536,
    2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32, 2**32 + 1, 2**33, 2**48,
    2**62, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 64, 2**64 - 2, 2**64 - 1,
)
F32_INTERESTING = (
    float("nan"), float("inf"), float("-inf"), -0.0, 0.0, -1.0, 1.0, 1.0000001, 1.1, 2.0,
    0.5, 1e-45, 3.4e38, -3.4e38, 1e20,
)
BAD_UTF8 = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80", b"\x80", b"\0")


def _u(fmt_code, value):
    bits = struct.calcsize(fmt_code) * 8
    return value % (1 << bits)


def version_of(buf):
    """The format version a header claims (the current one when unknown or cut)."""
    version = struct.unpack_from("<I", buf, 8)[0] if len(buf) >= 12 else FORMAT_VERSION
    return version if version in HEADER_SIZES else FORMAT_VERSION


def header_size(buf):
    return HEADER_SIZES[version_of(buf)]


def n_sections(buf):
    return VERSION_N_SECTIONS[version_of(buf)]


def fix_header_crc(buf):
    size = header_size(buf)
    if len(buf) >= size:
        struct.pack_into("<I", buf, size - 4, zlib.crc32(bytes(buf[: size - 4])))


def get_field(buf, name):
    offset, code = HEAD[name]
    return struct.unpack_from(code, buf, offset)[0]


def set_field(buf, name, value):
    offset, code = HEAD[name]
    if code == "<8s":
        struct.pack_into(code, buf, offset, value)
    else:
        struct.pack_into(code, buf, offset, _u(code, value))


def entry_pos(index, field):
    offset, code = ENTRY[field]
    return TABLE_OFFSET + index * ENTRY_SIZE + offset, code


def get_entry(buf, index, field):
    pos, code = entry_pos(index, field)
    return struct.unpack_from(code, buf, pos)[0]


def set_entry(buf, index, field, value):
    pos, code = entry_pos(index, field)
    struct.pack_into(code, buf, pos, _u(code, value))


def parse(data):
    """(fields, bodies) of a KB image; sections out of range are cut to what exists."""
    if len(data) < header_size(data):
        return None
    fields = {name: get_field(data, name) for name, _ in HEAD_FIELDS}
    version = version_of(data)
    bodies = Bodies([], version, fields["flags"] & VERSION_FLAGS[version])
    for i in range(n_sections(data)):
        offset, length = get_entry(data, i, "offset"), get_entry(data, i, "length")
        bodies.append(bytes(data[offset : offset + length]) if offset < len(data) else b"")
    return fields, bodies


def build(fields, bodies, rng, fix_crcs=True, old=None):
    """Lay out a KB image: header fields as given, sections aligned and in order."""
    version = fields["version"] if fields["version"] in HEADER_SIZES else FORMAT_VERSION
    entries, offset = [], HEADER_SIZES[version]
    for i, body in enumerate(bodies):
        offset = (offset + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        if rng.random() < 0.03:
            offset += ALIGNMENT  # an unused gap is legal
        crc = zlib.crc32(body) if fix_crcs or old is None else get_entry(old, i, "crc")
        entries.append((i, crc, offset, len(body)))
        offset += len(body)
    buf = bytearray(offset)
    for name, _ in HEAD_FIELDS:
        set_field(buf, name, fields[name])
    set_field(buf, "file_size", offset)
    for (i, crc, start, length), body in zip(entries, bodies):
        set_entry(buf, i, "id", i)
        set_entry(buf, i, "crc", crc)
        set_entry(buf, i, "offset", start)
        set_entry(buf, i, "length", length)
        buf[start : start + length] = body
    fix_header_crc(buf)
    return buf


def get_array(bodies, name):
    """A section's items, decoded with the dtype that bodies' flags give it."""
    dtype = dtype_of(name, bodies.flags)
    index = SECTION_INDEX[name]
    body = bodies[index] if index < len(bodies) else b""
    n = len(body) // dtype.itemsize
    return numpy.frombuffer(body[: n * dtype.itemsize], dtype=dtype).copy()


def put_array(bodies, name, array):
    array = numpy.asarray(array)
    dtype = dtype_of(name, bodies.flags)
    if dtype.kind == "u" and dtype.itemsize < 8 and array.dtype.kind in "iu":
        # Wrap like a C cast (a narrowed offset over 4 GiB), never an OverflowError.
        array = array.astype(numpy.uint64) & numpy.uint64((1 << (8 * dtype.itemsize)) - 1)
    bodies[SECTION_INDEX[name]] = numpy.ascontiguousarray(array, dtype=dtype).tobytes()


def recount(fields, bodies):
    """Header counts that agree with the section lengths (to pass the O(1) checks)."""
    n_e = len(bodies[SECTION_INDEX["entity_hashes"]]) // 8
    fields["n_entities"] = n_e
    fields["n_aliases"] = len(bodies[SECTION_INDEX["alias_hashes"]]) // 8
    fields["n_candidates"] = len(bodies[SECTION_INDEX["candidate_rows"]]) // 4
    item = 16 if bodies.version == 1 else 4  # a (key, value) cell or a uint32 slot
    for kind in ("entity", "alias"):
        body = bodies[SECTION_INDEX[table_name(kind, bodies.version)]]
        fields[f"{kind}_cells_length"] = len(body) // item
    if n_e:
        fields["vector_length"] = len(bodies[SECTION_INDEX["vectors"]]) // 4 // n_e


def preshed_cells(hashes, length, rng, misplace=False, allow_duplicates=False):
    """A (length, 2) uint64 table built with preshed's rule: key & mask, linear probing."""
    cells = numpy.zeros((length, 2), dtype=numpy.uint64)
    if length == 0:
        return cells
    mask = length - 1
    for row, key in enumerate(hashes.tolist()):
        if key == 0:
            continue
        i = key & mask
        if misplace and rng.random() < 0.3:
            i = rng.randrange(length)
        for _ in range(length):
            if cells[i, 0] == 0 or (cells[i, 0] == key and not allow_duplicates):
                break
            i = (i + 1) & mask
        else:
            break  # full
        cells[i] = (key, row + 1)
    return cells


def slot_table(hashes, length, rng, misplace=False, duplicates=False):
    """A uint32 slot table built with tables.build_slots' rule (row + 1 at the first
    empty slot from key & mask), optionally with misplaced or repeated rows."""
    slots = numpy.zeros(length, dtype=numpy.uint32)
    if length == 0:
        return slots
    mask = length - 1
    for row, key in enumerate(hashes.tolist()):
        copies = 2 if duplicates and rng.random() < 0.2 else 1
        for _ in range(copies):
            i = key & mask
            if misplace and rng.random() < 0.3:
                i = rng.randrange(length)
            for _ in range(length):
                if slots[i] == 0:
                    break
                i = (i + 1) & mask
            else:
                return slots  # full
            slots[i] = row + 1
    return slots


def break_slots(slots, hashes, rng):
    """Corrupt a slot table so that it still maps every row once where possible:
    a key moved off its probe path (an empty slot between its home and it), two
    slots swapped, a row past the end, or no empty slot left."""
    length, n = len(slots), len(hashes)
    if not length:
        return slots
    mask = length - 1
    used = numpy.flatnonzero(slots).tolist()
    how = rng.random()
    if how < 0.35 and used:
        # Move a key one step further along, or to a random empty slot, leaving
        # an empty slot where it was (on its own probe path).
        i = rng.choice(used)
        free = numpy.flatnonzero(slots == 0).tolist()
        target = (i + 1) & mask if slots[(i + 1) & mask] == 0 else (
            rng.choice(free) if free else i)
        slots[target], slots[i] = slots[i], 0
        if rng.random() < 0.3 and free and slots[i] == 0:
            # An empty slot between a key's home and the key, all rows still mapped.
            row = int(slots[target]) - 1
            home = int(hashes[row]) & mask if row < n else target
            if home != target:
                slots[(home + rng.randrange((target - home) & mask)) & mask] = 0
    elif how < 0.55 and len(used) > 1:
        a, b = rng.sample(used, 2)
        slots[a], slots[b] = slots[b], slots[a]
    elif how < 0.7:
        slots[rng.randrange(length)] = rng.choice((n, n + 1, n + 2, 2**32 - 1, 1, 0))
    else:
        empty = slots == 0
        slots[empty] = numpy.uint32(rng.choice((1, n, n + 1, 2**32 - 1)) % 2**32)
    return slots


def pick_int(rng, current, extra=()):
    choice = rng.random()
    if choice < 0.35:
        return rng.choice(U64_INTERESTING)
    if choice < 0.65:
        return current + rng.choice((-64, -8, -4, -2, -1, 1, 2, 4, 8, 64))
    if choice < 0.75:
        return current * 2 if rng.random() < 0.5 else current // 2
    if choice < 0.9 and extra:
        return rng.choice(list(extra))
    return rng.getrandbits(rng.choice((8, 16, 32, 64)))


def random_text(rng):
    alphabet = "abcXYZ 09-_.éßñ東京€😀\u0301"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))


# --------------------------------------------------------------------------- mutations


def m_header_field(data, rng):
    """Rewrite one header field with a boundary value; recompute the header CRC."""
    buf = bytearray(data)
    if len(buf) < header_size(buf):
        return buf
    weights = {
        "n_entities": 6, "n_aliases": 6, "n_candidates": 6, "vector_length": 6,
        "entity_cells_length": 5, "alias_cells_length": 5, "file_size": 2, "n_sections": 1,
        "flags": 3, "version": 1, "endian": 1, "magic": 1,
    }
    name = rng.choices(list(weights), weights=list(weights.values()))[0]
    if name == "magic":
        magic = bytearray(get_field(buf, "magic"))
        magic[rng.randrange(8)] ^= 1 << rng.randrange(8)
        set_field(buf, "magic", bytes(magic))
    elif name == "flags" and rng.random() < 0.7:
        # Flip the narrow string offsets flag (the sections keep their size) or set
        # a bit no version knows.
        bit = FLAG_NARROW_STRING_OFFSETS if rng.random() < 0.7 else 1 << rng.randrange(32)
        set_field(buf, "flags", get_field(buf, "flags") ^ bit)
    else:
        others = [get_field(buf, n) for n, c in HEAD_FIELDS if c != "8s"] + [len(buf)]
        set_field(buf, name, pick_int(rng, get_field(buf, name), others))
    fix_header_crc(buf)
    return buf


def m_section_entry(data, rng):
    """Rewrite a section table entry (offset, length, id, crc, reserved); fix the CRC."""
    buf = bytearray(data)
    if len(buf) < header_size(buf):
        return buf
    count = n_sections(buf)
    index = rng.randrange(count)
    field = rng.choices(("offset", "length", "id", "crc", "reserved"), (5, 5, 1, 1, 1))[0]
    current = get_entry(buf, index, field)
    extra = [len(buf), len(buf) - header_size(buf)]
    for i in range(count):
        start, length = get_entry(buf, i, "offset"), get_entry(buf, i, "length")
        extra += [start, start + length, length]
    if field in ("offset", "length") and rng.random() < 0.4:
        step = dtype_of(VERSION_SECTIONS[version_of(buf)][index][0],
                        get_field(buf, "flags")).itemsize
        value = current + rng.choice((-ALIGNMENT, ALIGNMENT, -step, step, -1, 1))
    else:
        value = pick_int(rng, current, extra)
    set_entry(buf, index, field, value)
    if field == "offset" and rng.random() < 0.5:
        # Keep the end where it was: the section grows or shrinks at its start.
        set_entry(buf, index, "length", get_entry(data, index, "length") + current - value)
    fix_header_crc(buf)
    return buf


def m_resize_file(data, rng):
    """Cut or pad the file and make file_size agree (so the size check passes)."""
    buf = bytearray(data)
    size = header_size(buf)
    if rng.random() < 0.5 and len(buf) > size:
        del buf[rng.randrange(size, len(buf) + 1) :]
    else:
        buf += bytes(rng.choice((1, 4, 8, 63, 64, 128)))
    if len(buf) >= size:
        set_field(buf, "file_size", len(buf))
        fix_header_crc(buf)
    return buf


def m_repair_header(data, rng):
    """Make file_size and the header CRC agree with whatever the bytes now are."""
    buf = bytearray(data)
    if len(buf) >= header_size(buf):
        if rng.random() < 0.7:
            set_field(buf, "file_size", len(buf))
        fix_header_crc(buf)
    return buf


def _e_element(fields, bodies, rng):
    """Edit one element of a section by its dtype (the section CRC is fixed later)."""
    candidates = [i for i, body in enumerate(bodies) if body]
    if not candidates:
        return
    index = rng.choice(candidates)
    name = VERSION_SECTIONS[bodies.version][index][0]
    dtype = dtype_of(name, bodies.flags)
    if dtype.kind == "u" and dtype.itemsize == 1:
        body = bytearray(bodies[index])
        pos = rng.randrange(len(body))
        if rng.random() < 0.5:
            bad = rng.choice(BAD_UTF8)
            body[pos : pos + len(bad)] = bad[: len(body) - pos]
        else:
            body[pos] = rng.randrange(256)
        bodies[index] = bytes(body)
        return
    array = get_array(bodies, name)
    if not len(array):
        return
    pos = rng.randrange(len(array))
    if dtype.kind == "f":
        array[pos] = rng.choice(F32_INTERESTING)
    else:
        limit = 1 << (8 * dtype.itemsize)
        if rng.random() < 0.3:
            value = int(array[rng.randrange(len(array))])  # a value from elsewhere
        else:
            extra = (fields["n_entities"], fields["n_aliases"], fields["n_candidates"],
                     fields["n_entities"] + 1, fields["n_aliases"] + 1,  # a slot past the end
                     *(len(body) // 4 for body in bodies[VERSION_N_SECTIONS[1]:]),
                     *(len(body) // 8 + 1 for body in bodies[VERSION_N_SECTIONS[1]:]))
            value = pick_int(rng, int(array[pos]), extra)
        array[pos] = value % limit
    put_array(bodies, name, array)


def _e_entities(fields, bodies, rng):
    """Add or drop entity rows in every entity section (and maybe the hash table)."""
    hashes = get_array(bodies, "entity_hashes")
    freqs = get_array(bodies, "entity_freqs")
    offsets = get_array(bodies, "entity_string_offsets")
    strings = bodies[SECTION_INDEX["entity_strings"]]
    length = fields["vector_length"] if fields["vector_length"] < 64 else 3
    vectors = get_array(bodies, "vectors")
    n = len(hashes)
    if rng.random() < 0.5 and n:
        k = rng.randrange(1, n + 1)
        hashes, freqs = hashes[: n - k], freqs[: n - k]
        vectors = vectors[: (n - k) * length]
        offsets = offsets[: n - k + 1]
        if len(offsets):
            strings = strings[: int(offsets[-1]) % (len(strings) + 1)]
    else:
        for _ in range(rng.randrange(1, 4)):
            text = random_text(rng)
            encoded = text.encode("utf8")
            choice = rng.random()
            if choice < 0.7 and text:
                new_hash = hash_string(text)
            elif choice < 0.85 and n:
                new_hash = int(hashes[rng.randrange(len(hashes))])  # a duplicate
            else:
                new_hash = rng.choice((0, 1, 2, 2**64 - 1))
            hashes = numpy.append(hashes, numpy.uint64(new_hash))
            freqs = numpy.append(freqs, numpy.float32(rng.choice((1.0, 0.0, 5.5, float("nan")))))
            vectors = numpy.append(vectors, numpy.ones(length, dtype=numpy.float32))
            strings = strings + encoded
            offsets = numpy.append(offsets, numpy.uint64(len(strings)))
    if rng.random() < 0.1:
        fields["vector_length"] = length
    put_array(bodies, "entity_hashes", hashes)
    put_array(bodies, "entity_freqs", freqs)
    put_array(bodies, "vectors", vectors)
    put_array(bodies, "entity_string_offsets", offsets)
    bodies[SECTION_INDEX["entity_strings"]] = strings
    if rng.random() < 0.7:
        _e_rehash(fields, bodies, rng, kind="entity")


def _e_aliases(fields, bodies, rng):
    """Add or drop alias rows (with or without candidate slots)."""
    hashes = get_array(bodies, "alias_hashes")
    offsets = get_array(bodies, "alias_offsets")
    string_offsets = get_array(bodies, "alias_string_offsets")
    strings = bodies[SECTION_INDEX["alias_strings"]]
    rows = get_array(bodies, "candidate_rows")
    priors = get_array(bodies, "candidate_priors")
    n = len(hashes)
    n_entities = len(bodies[SECTION_INDEX["entity_hashes"]]) // 8
    if rng.random() < 0.4 and n:
        k = rng.randrange(1, n + 1)
        hashes = hashes[: n - k]
        offsets = offsets[: n - k + 1]
        string_offsets = string_offsets[: n - k + 1]
        if len(offsets):
            end = int(offsets[-1]) % (len(rows) + 1)
            rows, priors = rows[:end], priors[:end]
        if len(string_offsets):
            strings = strings[: int(string_offsets[-1]) % (len(strings) + 1)]
    else:
        for _ in range(rng.randrange(1, 4)):
            text = random_text(rng)
            hashes = numpy.append(hashes, numpy.uint64(hash_string(text) if text else 0))
            strings = strings + text.encode("utf8")
            string_offsets = numpy.append(string_offsets, numpy.uint64(len(strings)))
            n_new = rng.choice((0, 0, 1, 2, 3))
            for _ in range(n_new):
                row = rng.randrange(n_entities) if n_entities and rng.random() < 0.9 else (
                    rng.choice((n_entities, 2**32 - 1)))
                rows = numpy.append(rows, numpy.uint32(row))
                priors = numpy.append(priors, numpy.float32(rng.choice((0.1, 0.3, 1.0, 0.0))))
            base = int(offsets[-1]) if len(offsets) else 0
            offsets = numpy.append(offsets, numpy.uint64((base + n_new) % 2**64))
    put_array(bodies, "alias_hashes", hashes)
    put_array(bodies, "alias_offsets", offsets)
    put_array(bodies, "alias_string_offsets", string_offsets)
    bodies[SECTION_INDEX["alias_strings"]] = strings
    put_array(bodies, "candidate_rows", rows)
    put_array(bodies, "candidate_priors", priors)
    if rng.random() < 0.7:
        _e_rehash(fields, bodies, rng, kind="alias")


def _e_candidates(fields, bodies, rng):
    """Move candidate slots between aliases, or make alias_offsets non-monotonic."""
    offsets = get_array(bodies, "alias_offsets")
    if len(offsets) < 2:
        return
    i = rng.randrange(1, len(offsets))
    choice = rng.random()
    if choice < 0.4 and i < len(offsets) - 1:
        offsets[i] = rng.choice((0, int(offsets[-1]), int(offsets[i]) + 1, 2**63, 2**64 - 1))
    elif choice < 0.7:
        # Add slots to alias i - 1 (every later offset moves too).
        k = rng.randrange(1, 4)
        offsets[i:] += numpy.uint64(k)
        n_entities = max(1, len(bodies[SECTION_INDEX["entity_hashes"]]) // 8)
        pos = int(offsets[i - 1])
        rows = get_array(bodies, "candidate_rows")
        priors = get_array(bodies, "candidate_priors")
        pos = min(pos, len(rows))
        rows = numpy.insert(rows, pos, numpy.array(
            [rng.randrange(n_entities) for _ in range(k)], dtype=numpy.uint32))
        priors = numpy.insert(priors, pos, numpy.full(k, 0.5, dtype=numpy.float32))
        put_array(bodies, "candidate_rows", rows)
        put_array(bodies, "candidate_priors", priors)
    else:
        offsets = numpy.sort(offsets)
    put_array(bodies, "alias_offsets", offsets)


def _e_rehash(fields, bodies, rng, kind=None):
    """Rebuild a hash table from the stored keys: right, misplaced, full, broken or
    resized; (key, row + 1) cells in version 1, uint32 slot tables in version 2."""
    kinds = ("entity", "alias") + (("norm", "gram") if len(bodies) == len(SECTIONS) else ())
    kind = kind or rng.choice(kinds)
    hashes = get_array(bodies, TABLE_KEYS[kind])
    n = len(hashes)
    name = table_name(kind, bodies.version)
    if bodies.version == 1:
        need = 1
        while need <= n:
            need *= 2
        length = rng.choice((need, need, need * 2, need * 4, max(need // 2, 1),
                             0 if not n else need))
        cells = preshed_cells(hashes, length, rng, misplace=rng.random() < 0.15,
                              allow_duplicates=rng.random() < 0.3)
        choice = rng.random()
        if choice < 0.1 and length:
            # No empty cell left (lookups of unknown keys must still stop).
            empty = cells[:, 0] == 0
            cells[empty, 0] = numpy.arange(2, 2 + int(empty.sum()), dtype=numpy.uint64) * 977
            cells[empty, 1] = numpy.uint64(rng.choice((0, 1, n + 1, 2**64 - 1)))
        elif choice < 0.2 and length:
            i = rng.randrange(length)
            cells[i, rng.randrange(2)] = rng.choice(U64_INTERESTING)
        put_array(bodies, name, cells.reshape(-1))
    else:
        need = 8  # build_slots: a power of two >= 2 x rows, at least 8
        while need < 2 * n:
            need *= 2
        smallest = 1  # the smallest table the reader accepts: a power of two > rows
        while smallest <= n:
            smallest *= 2
        length = rng.choice((need, need, need, need * 2, smallest, max(need // 2, 1),
                             max(need // 4, 1), need + 8, 0))
        slots = slot_table(hashes, length, rng, misplace=rng.random() < 0.1,
                           duplicates=rng.random() < 0.1)
        if rng.random() < 0.3:
            slots = break_slots(slots, hashes, rng)
        put_array(bodies, name, slots)
    if kind in ("entity", "alias"):  # the index tables' lengths come from their sections
        fields[f"{kind}_cells_length"] = length


def _e_slots(fields, bodies, rng):
    """Corrupt one slot table in place (probe path, swaps, rows past the end)."""
    if bodies.version == 1:
        return _e_rehash(fields, bodies, rng)
    kinds = ("entity", "alias") + (("norm", "gram") if len(bodies) == len(SECTIONS) else ())
    kind = rng.choice(kinds)
    name = table_name(kind, 2)
    put_array(bodies, name, break_slots(get_array(bodies, name),
                                        get_array(bodies, TABLE_KEYS[kind]), rng))


def _e_flags(fields, bodies, rng):
    """Switch the string offsets between uint32 and uint64, with the flag or without."""
    if bodies.version == 1:
        if rng.random() < 0.5:
            fields["flags"] ^= FLAG_NARROW_STRING_OFFSETS  # a flag in version 1: rejected
        return
    old = {name: get_array(bodies, name) for name in STRING_OFFSETS}
    new_flags = bodies.flags ^ FLAG_NARROW_STRING_OFFSETS
    how = rng.random()
    if how < 0.45:  # a consistent re-encoding (wraps offsets over 4 GiB)
        bodies.flags = new_flags
        fields["flags"] = (fields["flags"] & ~FLAG_NARROW_STRING_OFFSETS) | new_flags
        for name, array in old.items():
            put_array(bodies, name, array)
    elif how < 0.65:  # the flag alone: the sections' sizes disagree with it
        fields["flags"] ^= FLAG_NARROW_STRING_OFFSETS
    elif how < 0.85:  # one section re-encoded, the flag kept
        name = rng.choice(STRING_OFFSETS)
        flagged = Bodies(bodies, 2, new_flags)
        put_array(flagged, name, old[name])
        bodies[SECTION_INDEX[name]] = flagged[SECTION_INDEX[name]]
    else:  # both re-encoded, the flag kept (whole items, so only the counts can tell)
        bodies.flags = new_flags
        for name, array in old.items():
            put_array(bodies, name, array)
        bodies.flags ^= FLAG_NARROW_STRING_OFFSETS


def _e_vector_length(fields, bodies, rng):
    """Change the vector length and pad or cut the vector matrix to match."""
    n = len(bodies[SECTION_INDEX["entity_hashes"]]) // 8
    length = rng.choice((0, 1, 2, 3, 16, 300))
    vectors = get_array(bodies, "vectors")
    wanted = n * length
    vectors = numpy.resize(vectors, wanted) if len(vectors) else numpy.zeros(wanted)
    put_array(bodies, "vectors", vectors)
    fields["vector_length"] = length if n or rng.random() < 0.5 else rng.choice(U64_INTERESTING)


def _e_strings(fields, bodies, rng):
    """Insert or delete bytes inside a string blob and shift the later offsets."""
    kind = rng.choice(("entity", "alias"))
    blob = bytearray(bodies[SECTION_INDEX[f"{kind}_strings"]])
    offsets = get_array(bodies, f"{kind}_string_offsets")
    pos = rng.randrange(len(blob) + 1)
    if rng.random() < 0.5 and pos < len(blob):
        del blob[pos]
        offsets[offsets > pos] -= numpy.uint64(1)
    else:
        inserted = rng.choice((b"x", "é".encode(), rng.choice(BAD_UTF8)))
        blob[pos:pos] = inserted
        offsets[offsets > pos] += numpy.uint64(len(inserted))
    if len(offsets):
        offsets[-1] = len(blob)
    bodies[SECTION_INDEX[f"{kind}_strings"]] = bytes(blob)
    put_array(bodies, f"{kind}_string_offsets", offsets)


def _e_swap(fields, bodies, rng):
    """Swap the contents of two sections of the same dtype."""
    by_dtype = {}
    for name, _ in VERSION_SECTIONS[bodies.version][: len(bodies)]:
        by_dtype.setdefault(dtype_of(name, bodies.flags), []).append(SECTION_INDEX[name])
    group = rng.choice([g for g in by_dtype.values() if len(g) > 1])
    a, b = rng.sample(group, 2)
    bodies[a], bodies[b] = bodies[b], bodies[a]


def _index_config(rng):
    """Settings JSON for the index_config section: valid, odd or broken."""
    expansions = rng.choice(({}, {"st": "saint"}, {"a": "b c"}, {"a b": "c"}, {"": "x"},
                             {"st": 5}, ["st"], None))
    normalizer = rng.choice(({"version": 1, "expansions": expansions}, {"version": 2},
                             {"version": True}, {}, [], "x", None))
    config = rng.choice(({"normalizer": normalizer, "fuzzy": rng.choice((True, False, 0, None))},
                         {"normalizer": normalizer}, {"fuzzy": True}, [normalizer], 1, None))
    choice = rng.random()
    if choice < 0.6:
        return json.dumps(config).encode("utf8")
    if choice < 0.8:  # deeply nested: a recursion limit, not a ValueError
        depth = rng.choice((100, 1000, 5000, 20000))
        return rng.choice((b"[" * depth + b"]" * depth, b"[" * depth, b'{"a":' * depth))
    return rng.choice((b"", b"{", b"\xff\xfe", b"\0", b"{}", b"nul", b'{"normalizer": 1e999}'))


def _e_index(fields, bodies, rng):
    """Edit the alias index consistently or not: settings, keys, slots, postings, counts."""
    if len(bodies) < len(SECTIONS):
        return  # version 1: no index sections
    norm_offsets = get_array(bodies, "norm_offsets")
    n_keys = len(bodies[SECTION_INDEX["norm_hashes"]]) // 8
    choice = rng.random()
    if choice < 0.2:
        bodies[SECTION_INDEX["index_config"]] = _index_config(rng)
    elif choice < 0.35 and n_keys:
        # Drop the last keys with their slots and trigram counts.
        k = rng.randrange(1, n_keys + 1)
        norm_offsets = norm_offsets[: n_keys - k + 1]
        end = int(norm_offsets[-1]) if len(norm_offsets) else 0
        put_array(bodies, "norm_hashes", get_array(bodies, "norm_hashes")[: n_keys - k])
        put_array(bodies, "norm_offsets", norm_offsets)
        for name in ("norm_entity_rows", "norm_priors", "norm_alias_rows"):
            put_array(bodies, name, get_array(bodies, name)[:end])
        if rng.random() < 0.7:
            put_array(bodies, "norm_gram_counts",
                      get_array(bodies, "norm_gram_counts")[: n_keys - k])
        if rng.random() < 0.7:
            _e_rehash(fields, bodies, rng, kind="norm")
    elif choice < 0.5:
        postings = get_array(bodies, "gram_postings")
        if not len(postings):
            return
        i, j = sorted(rng.randrange(len(postings)) for _ in range(2))
        how = rng.random()
        if how < 0.3:
            postings[i : j + 1] = postings[i : j + 1][::-1]  # not ascending
        elif how < 0.6:
            postings[i] = postings[j]  # a duplicate
        else:
            postings[i] = rng.choice((n_keys, n_keys - 1, 2**32 - 1, 0))
        put_array(bodies, "gram_postings", postings)
    elif choice < 0.62:
        counts = get_array(bodies, "norm_gram_counts")
        if not len(counts):
            return
        how = rng.random()
        if how < 0.4:
            counts = counts[::-1].copy()  # breaks the ascending order of key rows
        elif how < 0.7:
            counts[rng.randrange(len(counts))] = rng.choice((0, 1, 2**31, 2**32 - 1))
        else:
            rng.shuffle(counts)
        put_array(bodies, "norm_gram_counts", counts)
    elif choice < 0.7:
        # No index at all, or settings without sections, or sections without settings.
        how = rng.random()
        names = INDEX_NAMES if how < 0.4 else INDEX_NAMES[:1] if how < 0.7 else INDEX_NAMES[1:]
        for name in names:
            bodies[SECTION_INDEX[name]] = b""
    elif choice < 0.8:
        # The trigram part only: dropped (normalised index alone) or cut.
        trigram = ("norm_gram_counts", "gram_keys", "gram_offsets", "gram_postings", "gram_slots")
        if rng.random() < 0.6:
            for name in trigram:
                bodies[SECTION_INDEX[name]] = b""
        else:
            name = rng.choice(trigram)
            array = get_array(bodies, name)
            put_array(bodies, name, array[: rng.randrange(len(array) + 1)])
    elif choice < 0.9:
        name = rng.choice(("norm_offsets", "gram_offsets"))
        offsets = get_array(bodies, name)
        if len(offsets) < 2:
            return
        i = rng.randrange(1, len(offsets))
        how = rng.random()
        if how < 0.5 and i < len(offsets) - 1:
            offsets[i] = rng.choice((0, int(offsets[-1]), int(offsets[i]) + 1, 2**63, 2**64 - 1))
        else:
            offsets[i:] += numpy.uint64(rng.randrange(1, 3))  # slots or postings missing
        put_array(bodies, name, offsets)
    else:
        _e_rehash(fields, bodies, rng, kind=rng.choice(("norm", "gram")))


EDITS = (
    (_e_element, 8), (_e_entities, 3), (_e_aliases, 3), (_e_candidates, 3), (_e_rehash, 3),
    (_e_vector_length, 2), (_e_strings, 2), (_e_swap, 1), (_e_index, 6), (_e_slots, 3),
    (_e_flags, 2),
)


def m_relayout(data, rng):
    """Parse, edit sections, then lay the file out again with fixed CRCs and counts."""
    parsed = parse(data)
    if parsed is None:
        return bytearray(data)
    fields, bodies = parsed
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        edit = rng.choices([e for e, _ in EDITS], [w for _, w in EDITS])[0]
        edit(fields, bodies, rng)
    if rng.random() < 0.85:
        recount(fields, bodies)
    return build(fields, bodies, rng, fix_crcs=rng.random() < 0.9, old=data)


STRUCTURED = (
    (m_header_field, 4), (m_section_entry, 3), (m_relayout, 8), (m_resize_file, 1),
)


def custom_mutator(data, max_size, seed, mode="mixed"):
    import atheris

    rng = random.Random(seed)
    if mode == "plain" or (mode == "mixed" and rng.random() < 0.3):
        out = atheris.Mutate(data, max_size)
        if mode == "mixed" and rng.random() < 0.6:
            out = m_repair_header(out, rng)
        return bytes(out[:max_size])
    out = data
    for _ in range(rng.choice((1, 1, 1, 2))):
        mutation = rng.choices([m for m, _ in STRUCTURED], [w for _, w in STRUCTURED])[0]
        try:
            out = mutation(out, rng)
        except (ValueError, IndexError, OverflowError, struct.error):
            pass  # a mutant that the model could not express: keep the last one
    out = bytes(out)
    if len(out) > max_size:
        return bytes(data[:max_size])
    return out


# --------------------------------------------------------------------------- target

STATS = {
    "executions": 0, "rejected": 0, "accepted": 0, "deep_valid": 0, "tolerated": {},
    "findings": {}, "gaps": {}, "slow": 0,
}


class Outcome:
    """Collects what one input did; a step is one call (or group of calls) of the API."""

    def __init__(self, data, deep_ok):
        self.data = data
        self.deep_ok = deep_ok

    def step(self, name, function, *args):
        try:
            return True, function(*args)
        except KBFormatError as err:
            if self.deep_ok:
                gap(self.data, f"deep-valid input raised KBFormatError in {name}", err)
        except KBError as err:
            tolerated(name, err)
            if self.deep_ok:
                gap(self.data, f"deep-valid input raised {type(err).__name__} in {name}", err)
        except MemoryError as err:
            finding(self.data, name, err, "huge allocation", self.deep_ok)
        except Exception as err:  # noqa: BLE001 - every other exception is a finding
            finding(self.data, name, err, None, self.deep_ok)
        return False, None


def _where(err):
    frames = traceback.extract_tb(err.__traceback__)
    for frame in reversed(frames):
        if "entity_linker" in frame.filename and "fuzz_kb_format" not in frame.filename:
            return f"{Path(frame.filename).name}:{frame.lineno}"
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def _save(kind, key, data, text):
    store = STATS[kind]
    entry = store.get(key)
    if entry is None:
        entry = store[key] = {"count": 0, "size": None, "file": None}
    entry["count"] += 1
    if entry["size"] is None or len(data) < entry["size"]:
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        path = FINDINGS_DIR / f"{kind[:-1]}-{digest}.bin"
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(f"{key}\n\n{text}\n")
        entry["size"], entry["file"] = len(data), str(path)


def _message(err):
    """The error message without the numbers in it (one signature for all sizes)."""
    if isinstance(err, UnicodeDecodeError):
        return "invalid UTF-8"
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "N", str(err))[:100]


def finding(data, step, err, label=None, deep_ok=False):
    key = f"{label or type(err).__name__} in {step} at {_where(err)}: {_message(err)}"
    if deep_ok:
        key += " [input passes deep validation]"
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    _save("findings", key, data, text)


def gap(data, what, err=None):
    key = what if err is None else f"{what}: {type(err).__name__} {_message(err)}"
    text = "" if err is None else "".join(
        traceback.format_exception(type(err), err, err.__traceback__))
    _save("gaps", key, data, text)


def tolerated(step, err):
    key = f"{type(err).__name__} in {step}: {_message(err)}"
    STATS["tolerated"][key] = STATS["tolerated"].get(key, 0) + 1


def _dump(kb, aliases):
    out = []
    for alias in aliases:
        out.append([(c.entity_, round(c.prior_prob, 6)) for c in kb.get_alias_candidates(alias)])
    index = kb.alias_index
    lookups = None
    if index is not None:
        rows = index.key_rows(aliases)
        lookups = [array.tolist() for array in (rows, *index.gather(rows))]
        if index.has_fuzzy:
            lookups += [array.tolist() for array in index.search(aliases, 0.5, 5)]
    return sorted(kb.get_entity_strings()), sorted(aliases), sorted(map(repr, out)), lookups


def _check(condition, what):
    if not condition:
        raise AssertionError(what)


def exercise_index(kb, run, texts):
    """The alias index and the candidate generators on an accepted KB."""
    index = kb.alias_index
    n_e, n_a = len(kb), kb.get_size_aliases()
    if index is not None:
        n_keys = index.n_keys

        def key_rows_and_gather():
            rows = index.key_rows(texts)
            _check(rows.shape == (len(texts),) and ((rows >= -1) & (rows < n_keys)).all(),
                   f"key_rows out of range: {rows.tolist()} for {n_keys} keys")
            offsets, entity_rows, priors, alias_rows = index.gather(rows)
            _check(len(offsets) == len(texts) + 1 and offsets[0] == 0
                   and (numpy.diff(offsets) >= 0).all()
                   and len(entity_rows) == len(priors) == len(alias_rows) == offsets[-1],
                   "gather returned inconsistent arrays")
            _check(((entity_rows < n_e) & (alias_rows < n_a)).all(),
                   "gather returned an entity or alias row out of range")
            kb.candidates_from_arrays(offsets, entity_rows, priors, alias_rows)
            index.gather(numpy.arange(min(n_keys, 64)))

        run.step("alias_index.key_rows/gather", key_rows_and_gather)

        def search(min_score, max_keys):
            offsets, rows, scores = index.search(texts, min_score, max_keys)
            counts = numpy.diff(offsets)
            _check(len(offsets) == len(texts) + 1 and (counts >= 0).all()
                   and (counts <= max_keys).all() and len(rows) == len(scores) == offsets[-1],
                   "search returned inconsistent arrays")
            _check(((rows >= 0) & (rows < n_keys)).all(), "search returned a key row out of range")
            _check((scores >= numpy.float32(min_score) - 1e-6).all(),
                   "search returned a score below min_score")
            index.gather(rows)

        if index.has_fuzzy:
            for min_score, max_keys in ((0.5, 5), (1.0, 2), (0.1, 50)):
                run.step("alias_index.search", search, min_score, max_keys)
        run.step("alias_index.copy", lambda: index.copy().key_rows(texts))

        def normalized(limit, by_prior, discount):
            offsets, entity_rows, priors, alias_rows = kb.lookup_normalized(
                texts, limit, by_prior=by_prior, discount=discount)
            counts = numpy.diff(offsets)
            _check(len(offsets) == len(texts) + 1 and offsets[0] == 0 and (counts >= 0).all()
                   and (limit < 0 or (counts <= limit).all())
                   and len(entity_rows) == len(priors) == len(alias_rows) == offsets[-1],
                   "lookup_normalized returned inconsistent arrays")
            _check(((entity_rows < n_e) & (alias_rows >= 0) & (alias_rows < n_a)).all(),
                   "lookup_normalized returned an entity or alias row out of range")

        for limit, by_prior, discount in ((-1, False, 1.0), (3, True, 0.01), (1, False, 0.0)):
            run.step("lookup_normalized", normalized, limit, by_prior, discount)
    # Without a stored index, a generator builds one in memory from the mapped arrays.
    generators = [G.ExactCandidates(), G.NormalizedCandidates(max_candidates=4)]
    if index is None or index.has_fuzzy:
        generators += [G.FuzzyCandidates(0.5, 5), G.CascadeCandidates(k=5, min_score=0.5)]
    for generator in generators:
        run.step(f"generators.{generator.name}",
                 lambda g=generator: kb.candidates_from_arrays(*g.arrays(kb, texts)))


def exercise(kb, data, deep_ok):
    """Every read call on an accepted KB; outcomes go to STATS."""
    rng = random.Random(zlib.crc32(data))
    run = Outcome(data, deep_ok)
    n_e, n_a = len(kb), kb.get_size_aliases()
    run.step("sizes", lambda: (kb.is_empty(), kb.is_read_only, kb.entity_vector_length,
                               kb.vectors.shape, kb.entity_hashes.shape, kb.entity_freqs.shape))
    ok_e, entities = run.step("get_entity_strings", kb.get_entity_strings)
    ok_a, aliases = run.step("get_alias_strings", kb.get_alias_strings)
    entities = entities if ok_e else []
    aliases = aliases if ok_a else []
    randoms = [random_text(rng) for _ in range(4)]
    randoms += [a + rng.choice(("x", "é", "")) for a in aliases[:2]]
    sample_a = aliases[:24] + rng.sample(aliases, min(8, len(aliases)))
    sample_e = entities[:24] + rng.sample(entities, min(8, len(entities)))
    length = kb.entity_vector_length

    def candidates(alias):
        for cand in kb.get_alias_candidates(alias):
            cand.entity_, cand.alias_, cand.entity, cand.alias  # noqa: B018
            if cand.vector.shape != (length,):
                raise AssertionError(f"vector has shape {cand.vector.shape}")
            float(cand.prior_prob), float(cand.entity_freq), repr(cand)  # noqa: B018

    for alias in sample_a + randoms:
        run.step("get_alias_candidates", candidates, alias)
    run.step("contains", lambda: [(kb.contains_alias(s), kb.contains_entity(s)) for s in randoms])
    run.step("lookup_aliases(str)", kb.lookup_aliases, sample_a + randoms)
    run.step("lookup_aliases(hashes)", kb.lookup_aliases,
             numpy.array(kb.entity_hashes.tolist()[:8] + list(U64_INTERESTING[:8]),
                         dtype=numpy.uint64))
    run.step("get_entity_rows(str)", kb.get_entity_rows, sample_e + randoms)
    run.step("get_entity_rows(hashes)", kb.get_entity_rows, numpy.array(kb.entity_hashes))
    for entity in sample_e[:8] + randoms[:2]:
        run.step("get_vector", kb.get_vector, entity)
    run.step("get_vectors", kb.get_vectors, sample_e + randoms)
    run.step("get_vectors([])", kb.get_vectors, [])
    for alias in sample_a[:8] + randoms[:1]:
        for entity in sample_e[:4] + randoms[:1]:
            run.step("get_prior_prob", kb.get_prior_prob, entity, alias)
    for entity in sample_e[:8] + randoms[:1]:
        run.step("get_parents", kb.get_parents, entity)
        run.step("get_ancestors", kb.get_ancestors, entity)
    run.step("ancestor_rows", kb.ancestor_rows, numpy.arange(n_e))

    def entity_ids():
        for row in list(range(min(n_e, 16))) + [max(n_e - 1, 0)]:
            if n_e:
                kb.get_entity_id(row)
        for row in (-1, n_e):
            try:
                kb.get_entity_id(row)
            except IndexError:
                pass  # documented for rows out of range
            else:
                raise AssertionError(f"get_entity_id({row}) did not raise IndexError")

    run.step("get_entity_id", entity_ids)
    ok, image = run.step("to_bytes", kb.to_bytes)
    if ok and image != data:
        finding(data, "to_bytes", AssertionError("to_bytes() is not the loaded image"))
    gaps_before = sum(entry["count"] for entry in STATS["gaps"].values())
    if deep_ok:
        run.step("oracle", _oracle, kb, data, entities if ok_e else None,
                 aliases if ok_a else None, n_e, n_a)
    ok, copied = run.step("copy", kb.copy)
    if ok:
        ok, image = run.step("copy().to_bytes", copied.to_bytes)
        clean = sum(entry["count"] for entry in STATS["gaps"].values()) == gaps_before
        if ok and deep_ok and clean:  # else the round trip only repeats the known gap
            _round_trip(kb, copied, image, aliases, data)
    # Last: a generator may build an index in memory, which changes what to_bytes() writes.
    exercise_index(kb, run, sample_a + randoms + ["St Louis", "pitsburgh", "", "..."])


def _round_trip(kb, copied, image, aliases, data):
    try:
        F.validate_buffer(image, "copy", deep=True)
        loaded = InMemoryLookupKB(VOCAB, 0).from_bytes(image)
        same = _dump(kb, aliases) == _dump(copied, aliases) == _dump(loaded, aliases)
    except Exception as err:  # noqa: BLE001
        gap(data, "copy() of a deep-valid KB does not reload", err)
        return
    if not same:
        gap(data, "copy() of a deep-valid KB reads differently")


def _oracle(kb, data, entities, aliases, n_e, n_a):
    """Invariants that the writer guarantees; deep validation should imply them."""
    hashes = numpy.array(kb.entity_hashes)
    if len(numpy.unique(hashes)) != n_e:
        gap(data, "deep validation accepts duplicate entity hashes")
    if n_e and hashes.min() < 2:
        gap(data, "deep validation accepts an entity hash 0 or 1 (preshed's reserved keys)")
    if n_e and not numpy.array_equal(kb.get_entity_rows(hashes),
                                     numpy.arange(n_e, dtype=numpy.int64)):
        gap(data, "deep validation accepts an entity hash table whose keys are not "
                  "reachable by probing")
    if not numpy.isfinite(numpy.array(kb.entity_freqs)).all():
        gap(data, "deep validation accepts a NaN/inf entity frequency")
    if entities is None or aliases is None:
        gap(data, "deep validation accepts strings that are not UTF-8")
        return
    if any(hash_string(e) != int(h) for e, h in zip(entities, hashes.tolist())):
        gap(data, "deep validation accepts an entity id that does not hash to its stored hash")
    offsets, _, priors = kb.lookup_aliases(aliases)
    found = numpy.array([kb.contains_alias(a) for a in aliases], dtype=bool)
    if n_a and not found.all():
        gap(data, "deep validation accepts an alias that cannot be found by its text "
                  "(hash mismatch, duplicate or unreachable cell)")
    running = numpy.concatenate([[0.0], numpy.cumsum(priors, dtype=numpy.float64)])
    if (running[offsets[1:]] - running[offsets[:-1]] > 1.00001).any():
        gap(data, "deep validation accepts priors of one alias that sum to more than 1")


def _remember(phase, data=b""):
    """Note in the shared last-input file what the worker is doing, for a crash report."""
    if LAST_INPUT is not None:
        if phase == PHASE_IDLE:
            LAST_INPUT[:4] = struct.pack("<I", phase)
        else:
            n = min(len(data), len(LAST_INPUT) - 8)
            LAST_INPUT[8 : 8 + n] = data[:n]
            LAST_INPUT[:8] = struct.pack("<II", phase, n)


def test_one_input(data):
    STATS["executions"] += 1
    now = time.time()
    if now >= DEADLINE:
        write_stats()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    if now - LAST_WRITE[0] > 0.5:
        if not LAST_WRITE[0] and LAST_INPUT is not None:
            # Installed after libFuzzer's handlers, which it chains to: a fatal
            # signal prints the Python stack, then libFuzzer writes crash-*.
            faulthandler.enable(all_threads=True)
        write_stats()
        LAST_WRITE[0] = now
    _remember(PHASE_TARGET, data)
    try:
        _run_one(data, now)
    finally:
        _remember(PHASE_IDLE)


def _run_one(data, now):
    try:
        kb = InMemoryLookupKB(VOCAB, 0).from_bytes(data)
    except KBFormatError as err:
        STATS["rejected"] += 1
        _deep_accepts_rejected(data, err)
        return
    except KBError as err:
        tolerated("from_bytes", err)
        return
    except MemoryError as err:
        finding(data, "from_bytes", err, "huge allocation")
        return
    except Exception as err:  # noqa: BLE001
        finding(data, "from_bytes", err)
        return
    STATS["accepted"] += 1
    deep_ok = False
    try:
        F.validate_buffer(data, "fuzz", deep=True)
        deep_ok = True
        STATS["deep_valid"] += 1
    except KBFormatError:
        pass
    except Exception as err:  # noqa: BLE001
        finding(data, "validate_buffer", err)
    try:
        exercise(kb, data, deep_ok)
    except Exception as err:  # noqa: BLE001 - a bug of this harness, still reported
        finding(data, "harness", err)
    if time.time() - now > 1.0:
        STATS["slow"] += 1


def _deep_accepts_rejected(data, rejection):
    """Deep validation should never pass a file that opening refuses."""
    try:
        F.validate_buffer(data, "fuzz", deep=True)
    except KBFormatError:
        return
    except Exception as err:  # noqa: BLE001
        finding(data, "validate_buffer", err)
        return
    # One entry per kind of rejection, not per message detail.
    gap(data, "deep validation accepts a file that from_bytes rejects: "
              + _message(rejection).split(" (")[0])


# --------------------------------------------------------------------------- worker

DEADLINE = float("inf")
LAST_WRITE = [0.0]
LAST_INPUT = None  # mmap: phase (u32), length (u32), the input being run or mutated
PHASE_IDLE, PHASE_TARGET, PHASE_MUTATOR = 0, 1, 2
FINDINGS_DIR = Path(".")
STATS_PATH = None


def write_stats():
    if STATS_PATH is not None:
        tmp = STATS_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps(STATS))
        os.replace(tmp, STATS_PATH)


def _vm_size():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def worker(args, libfuzzer_args):
    global DEADLINE, FINDINGS_DIR, STATS_PATH, LAST_INPUT, exercise
    import atheris

    _import_target(instrument=True)
    exercise = atheris.instrument_func(exercise)
    DEADLINE = args.deadline
    FINDINGS_DIR = Path(args.findings)
    STATS_PATH = Path(args.stats)
    if args.memory_mb:
        limit = _vm_size() + args.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    mode = args.mode
    with open(args.last_input, "wb+") as file:
        file.truncate(8 + args.max_len)
        LAST_INPUT = mmap.mmap(file.fileno(), 8 + args.max_len)

    def mutator(data, max_size, seed):
        _remember(PHASE_MUTATOR, data)
        try:
            return custom_mutator(data, max_size, seed, mode)
        finally:
            _remember(PHASE_IDLE)

    argv = [sys.argv[0], *libfuzzer_args]
    if mode == "plain":
        atheris.Setup(argv, test_one_input)
    else:
        atheris.Setup(argv, test_one_input, custom_mutator=mutator)
    atheris.Fuzz()


# --------------------------------------------------------------------------- supervisor


def _merge(total, part):
    for key in ("executions", "rejected", "accepted", "deep_valid", "slow"):
        total[key] += part.get(key, 0)
    for key, count in part.get("tolerated", {}).items():
        total["tolerated"][key] = total["tolerated"].get(key, 0) + count
    for kind in ("findings", "gaps"):
        for key, entry in part.get(kind, {}).items():
            old = total[kind].setdefault(key, {"count": 0, "size": None, "file": None})
            old["count"] += entry["count"]
            if old["size"] is None or (entry["size"] is not None and entry["size"] < old["size"]):
                old["size"], old["file"] = entry["size"], entry["file"]


def supervise(args):
    _import_target(instrument=False)
    work = Path(args.work or Path(tempfile.gettempdir()) / "entity_linker_fuzz_kb")
    corpus = Path(args.corpus or work / "corpus")
    findings_dir = work / "findings"
    for path in (corpus, findings_dir):
        path.mkdir(parents=True, exist_ok=True)
    for name, data in make_seeds().items():
        (corpus / f"seed-{name}.bin").write_bytes(data)
    artifacts_before = set(os.listdir(findings_dir))
    start = time.time()
    deadline = start + args.seconds
    total = {"executions": 0, "rejected": 0, "accepted": 0, "deep_valid": 0, "slow": 0,
             "tolerated": {}, "findings": {}, "gaps": {}}
    crashes = hangs = ooms = restarts = 0
    coverage = ""
    log_path = work / "libfuzzer.log"
    print(f"fuzz_kb_format: mode={args.mode} seconds={args.seconds} corpus={corpus} "
          f"work={work}", flush=True)
    with open(log_path, "w") as log:
        while time.time() < deadline - 2 and restarts <= args.max_restarts:
            stats_path = work / f"stats-{restarts}.json"
            stats_path.unlink(missing_ok=True)
            last_input = work / "last-input.bin"
            last_input.unlink(missing_ok=True)
            remaining = deadline - time.time()
            log.flush()
            log_start = log_path.stat().st_size
            command = [
                sys.executable, str(Path(__file__).resolve()), "--worker",
                "--deadline", repr(deadline), "--stats", str(stats_path),
                "--findings", str(findings_dir), "--mode", args.mode,
                "--memory-mb", str(args.memory_mb), "--last-input", str(last_input),
                "--max-len", str(args.max_len), "--",
                str(corpus), f"-max_len={args.max_len}", f"-timeout={args.timeout}",
                f"-rss_limit_mb={args.rss_limit_mb}", f"-artifact_prefix={findings_dir}/",
                f"-max_total_time={int(remaining) + 30}", f"-seed={args.seed + restarts}",
                "-print_final_stats=1",
            ]
            process = subprocess.Popen(command, stdout=log, stderr=log, cwd=str(work))
            next_report = time.time() + args.report_every
            while process.poll() is None:
                time.sleep(0.5)
                if time.time() >= next_report:
                    next_report += args.report_every
                    part = _read_json(stats_path)
                    done = total["executions"] + part.get("executions", 0)
                    print(f"  [{time.time() - start:6.0f} s] executions {done:,}, findings "
                          f"{len(total['findings']) + len(part.get('findings', {}))}, "
                          f"gaps {len(total['gaps']) + len(part.get('gaps', {}))}, "
                          f"{_coverage(log_path)}", flush=True)
                if time.time() > deadline + args.timeout + 60:
                    process.kill()
            _merge(total, _read_json(stats_path))
            coverage = _coverage(log_path) or coverage
            new = set(os.listdir(findings_dir)) - artifacts_before
            artifacts_before |= new
            crashes += sum(name.startswith("crash-") for name in new)
            hangs += sum(name.startswith(("timeout-", "slow-unit-")) for name in new)
            ooms += sum(name.startswith("oom-") for name in new)
            early = time.time() < deadline - 1
            if process.returncode == 0 and not early:
                break
            # A worker that died without an artifact (a signal outside an input's
            # run, or before libFuzzer could write one) is a crash too: keep what
            # it was running or mutating, from the last-input file.
            if not any(name.startswith(("crash-", "timeout-", "oom-")) for name in new):
                crashes += 1
                saved = _save_last_input(last_input, findings_dir, restarts)
                artifacts_before.add(saved)
                new.add(saved or "no input recorded")
            with open(log_path, "rb") as tail:
                tail.seek(log_start)
                lines = tail.read().decode("utf8", "replace").splitlines()
            lines = [line for line in lines
                     if not line.startswith(("#", "INFO:", "WARNING:", "Extension modules:"))]
            restarts += 1
            print(f"  worker exited with {process.returncode} after "
                  f"{time.time() - start:.0f} s; restarting (new artifacts: {sorted(new)}); "
                  "its last log lines:\n    " + "\n    ".join(lines[-25:]), flush=True)
    elapsed = time.time() - start
    execs = total["executions"]
    n_findings = sum(e["count"] for e in total["findings"].values())
    n_gaps = sum(e["count"] for e in total["gaps"].values())
    print()
    print(f"run time:        {elapsed:.1f} s")
    print(f"executions:      {execs:,} ({execs / max(elapsed, 1e-9):,.0f} exec/s)")
    print(f"  rejected with KBFormatError: {total['rejected']:,}; accepted by from_bytes: "
          f"{total['accepted']:,} (deep-valid: {total['deep_valid']:,}); slow (>1 s): "
          f"{total['slow']}")
    print(f"coverage:        {coverage or 'n/a'} (Python code only)")
    print(f"crashes:         {crashes}")
    print(f"hangs:           {hangs}")
    print(f"out-of-memory:   {ooms}")
    print(f"findings:        {len(total['findings'])} unique, {n_findings:,} inputs")
    for key, entry in sorted(total["findings"].items()):
        print(f"  - {key}\n      x{entry['count']:,}; smallest input ({entry['size']} bytes): "
              f"{entry['file']}")
    print(f"validation gaps: {len(total['gaps'])} unique, {n_gaps:,} inputs")
    for key, entry in sorted(total["gaps"].items()):
        print(f"  - {key}\n      x{entry['count']:,}; smallest input ({entry['size']} bytes): "
              f"{entry['file']}")
    print(f"tolerated KBError (deliberate validation): {sum(total['tolerated'].values()):,}")
    for key, count in sorted(total["tolerated"].items(), key=lambda kv: -kv[1])[:10]:
        print(f"  - x{count:,} {key}")
    print(f"worker restarts: {restarts}; libFuzzer log: {log_path}")
    (work / "summary.json").write_text(json.dumps(
        {"seconds": elapsed, "crashes": crashes, "hangs": hangs, "ooms": ooms, **total},
        indent=1))
    return 1 if (crashes or hangs or ooms or total["findings"] or total["gaps"]) else 0


def _save_last_input(path, findings_dir, index):
    try:
        raw = Path(path).read_bytes()
        phase, length = struct.unpack_from("<II", raw)
    except (OSError, struct.error):
        return None
    if phase == PHASE_IDLE:
        return None
    name = f"crash-last-input-{index}-{'target' if phase == PHASE_TARGET else 'mutator'}.bin"
    (Path(findings_dir) / name).write_bytes(raw[8 : 8 + length])
    return name


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _coverage(log_path):
    try:
        with open(log_path, "rb") as log:
            log.seek(max(0, log.seek(0, 2) - 65536))
            tail = log.read().decode("utf8", "replace")
    except OSError:
        return ""
    matches = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", tail)
    if not matches:
        return ""
    cov, ft, corp = matches[-1]
    return f"cov {cov}, ft {ft}, corpus {corp}"


def reproduce(paths):
    """Run the target once on each file, without libFuzzer, and print what happened."""
    global FINDINGS_DIR
    _import_target(instrument=False)
    FINDINGS_DIR = Path(tempfile.mkdtemp(prefix="kb_reproduce_"))
    status = 0
    for path in paths:
        for key in ("findings", "gaps", "tolerated"):
            STATS[key] = {}
        for key in ("executions", "rejected", "accepted", "deep_valid", "slow"):
            STATS[key] = 0
        data = Path(path).read_bytes()
        test_one_input(data)
        print(f"{path} ({len(data)} bytes): rejected={STATS['rejected']} "
              f"accepted={STATS['accepted']} deep_valid={STATS['deep_valid']}")
        for kind in ("findings", "gaps"):
            for key, entry in STATS[kind].items():
                status = 1
                print(f"  {kind[:-1]}: {key}")
                details = Path(entry["file"]).with_suffix(".txt").read_text().split("\n\n", 1)
                if details[1:] and details[1].strip():
                    print("    " + details[1].strip().replace("\n", "\n    "))
        for key in STATS["tolerated"]:
            print(f"  tolerated: {key}")
    return status


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    libfuzzer_args = []
    if "--" in argv:
        split = argv.index("--")
        argv, libfuzzer_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="run time (default 60)")
    parser.add_argument("--corpus", help="corpus directory (default <work>/corpus)")
    parser.add_argument("--work", help="work directory (default $TMPDIR/entity_linker_fuzz_kb)")
    parser.add_argument("--mode", choices=("mixed", "structured", "plain"), default="mixed")
    parser.add_argument("--max-len", type=int, default=32768)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per input = a hang")
    parser.add_argument("--memory-mb", type=int, default=1024,
                        help="address space allowed above start-up (a bigger allocation "
                             "is a finding); 0: no limit")
    parser.add_argument("--rss-limit-mb", type=int, default=3072)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-restarts", type=int, default=25)
    parser.add_argument("--report-every", type=float, default=60)
    parser.add_argument("--reproduce", nargs="+", metavar="FILE",
                        help="run the target on these inputs and print the outcome")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=float("inf"), help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    parser.add_argument("--findings", help=argparse.SUPPRESS)
    parser.add_argument("--last-input", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args, libfuzzer_args)
    if args.reproduce:
        return reproduce(args.reproduce)
    try:
        import atheris  # noqa: F401 (the workers need it)
    except ImportError:
        print("The fuzzer needs atheris: pip install atheris", file=sys.stderr)
        return 2
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main())

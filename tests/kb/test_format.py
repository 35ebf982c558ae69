"""The binary KB file (entity_linker.kb.format): round trips, atomic writes,
read-only mapped KBs, validation, truncation and corruption."""

import gc
import io
import os
import warnings

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kb_bytes import fix_header_crc, section_values, with_section

from entity_linker import InMemoryLookupKB
from entity_linker.errors import KBError, KBFormatError, ReadOnlyKBError
from entity_linker.kb import format as kb_format
from entity_linker.kb import hash_string

_BASE_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def flip_settings(max_examples):
    return settings(_BASE_SETTINGS, max_examples=max_examples)


# ------------------------------------------------------------------ helpers


def section_of(header, position):
    """Name of the section holding byte `position`, or None (header or padding)."""
    for name, (offset, length, _) in header.sections.items():
        if offset <= position < offset + length:
            return name
    return None


def with_header_fields(data, **fields):
    """data with some fixed header fields replaced and the header checksum recomputed."""
    names = ["magic", "version", "endian", "file_size", "n_entities", "n_aliases",
             "n_candidates", "vector_length", "entity_cells_length", "alias_cells_length",
             "n_sections", "flags"]
    values = dict(zip(names, kb_format._HEAD.unpack_from(data)))
    values.update(fields)
    out = bytearray(data)
    kb_format._HEAD.pack_into(out, 0, *[values[n] for n in names])
    return fix_header_crc(out)


def exercise_read_api(kb, aliases, entities, doc):
    """Call every read method of kb (results are not checked: only what they raise)."""
    len(kb)
    kb.is_empty()
    kb.get_size_entities()
    kb.get_size_aliases()
    kb.get_entity_strings()
    kb.get_alias_strings()
    queries = list(aliases) + ["alias_unknown", ""]
    for alias in queries:
        kb.contains_alias(alias)
        for cand in kb.get_alias_candidates(alias):
            (cand.entity, cand.entity_, cand.alias, cand.alias_, cand.prior_prob,
             cand.entity_freq, numpy.asarray(cand.entity_vector).sum(), repr(cand))
        for entity in entities:
            kb.get_prior_prob(entity, alias)
    for entity in list(entities) + ["Q_unknown"]:
        kb.contains_entity(entity)
        kb.get_vector(entity)
    kb.get_vectors(list(entities) + ["Q_unknown"])
    kb.get_entity_rows(list(entities) + ["Q_unknown"])
    _, rows, _ = kb.lookup_aliases(queries)
    kb.lookup_aliases(numpy.array([hash_string(a) for a in queries], dtype=numpy.uint64))
    if len(kb):
        kb.vectors[rows % len(kb)].sum()
    kb.entity_hashes.sum()
    kb.entity_freqs.sum()
    for row in range(len(kb)):
        kb.get_entity_id(row)
    kb.get_candidates_batch([doc[i:i + 1] for i in range(len(doc))])
    kb.to_bytes()


def exercise_read_api_and_copy(kb, aliases, entities, doc):
    exercise_read_api(kb, aliases, entities, doc)
    exercise_read_api(kb.copy(), aliases, entities, doc)


# ------------------------------------------------------------------ KB builders

UNICODE_ENTITIES = [("Zürich", 3.0), ("東京", 2.0), ("🦄", 1.0), ("Q1", 9.0)]


def build_empty(vocab):
    return InMemoryLookupKB(vocab, 3)


def build_one_entity_without_aliases(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.add_entity("Q1", 4.0, [0.5, -0.5])
    return kb


def build_alias_with_no_candidates(vocab):
    return InMemoryLookupKB.from_arrays(
        vocab, ["Q1", "Q2"], [1.0, 2.0], [[1.0], [2.0]],
        ["alias_none", "alias_two", "alias_none_2"], [0, 0, 2, 2], [1, 0], [0.5, 0.5],
    )


def build_unicode(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    for i, (entity, freq) in enumerate(UNICODE_ENTITIES):
        kb.add_entity(entity, freq, [float(i), 1.0])
    kb.add_alias("Zürich", ["Zürich", "🦄"], [0.5, 0.25])
    kb.add_alias("東京都", ["東京"], [1.0])
    kb.add_alias("🦄🦄", ["🦄", "Q1", "東京"], [0.25, 0.25, 0.25])
    kb.add_alias("alias_empty", [], [])
    return kb


def build_large_vectors(vocab):
    rng = numpy.random.default_rng(7)
    ids = [f"Q{i}" for i in range(40)]
    return InMemoryLookupKB.from_arrays(
        vocab, ids, rng.random(40), rng.normal(size=(40, 1000)), ["alias_a", "alias_b"],
        [0, 3, 5], [0, 17, 39, 3, 3], [0.5, 0.25, 0.25, 0.5, 0.5],
    )


def build_zero_dim_vectors(vocab):
    kb = InMemoryLookupKB(vocab, 0)
    kb.add_entity("Q1", 1.0, [])
    kb.add_entity("Q2", 2.0, [])
    kb.add_alias("alias_a", ["Q2", "Q1"], [0.5, 0.5])
    return kb


def build_with_appended_aliases(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    for i in range(5):
        kb.add_entity(f"Q{i}", float(i), [float(i)])
    kb.add_alias("alias_a", ["Q0"], [0.25])
    kb.add_alias("alias_b", ["Q1", "Q2"], [0.25, 0.25])
    kb.append_alias("alias_a", "Q3", 0.25)  # moves alias_a's slots behind alias_b's
    kb.append_alias("alias_b", "Q4", 0.25)
    kb.append_alias("alias_a", "Q4", 0.25)
    return kb


BUILDERS = {
    "empty": build_empty,
    "one-entity-no-aliases": build_one_entity_without_aliases,
    "alias-with-0-candidates": build_alias_with_no_candidates,
    "unicode": build_unicode,
    "1000-dim-vectors": build_large_vectors,
    "0-dim-vectors": build_zero_dim_vectors,
    "appended-aliases": build_with_appended_aliases,
}


@pytest.fixture(params=list(BUILDERS))
def any_kb(request, vocab):
    return BUILDERS[request.param](vocab)


# ---------------------------------------------------------------- round trips


def test_round_trip_through_bytes_keeps_everything(any_kb, vocab, snapshot):
    data = any_kb.to_bytes()
    loaded = InMemoryLookupKB(vocab, 17).from_bytes(data)
    assert snapshot(loaded) == snapshot(any_kb)
    assert loaded.entity_vector_length == any_kb.entity_vector_length
    assert loaded.is_read_only
    assert loaded.path is None
    assert loaded.to_bytes() == data
    assert loaded.vectors.shape == (len(any_kb), any_kb.entity_vector_length)


def test_round_trip_through_disk_keeps_everything(any_kb, vocab, snapshot, tmp_path):
    any_kb.to_disk(tmp_path / "kb")
    assert os.listdir(tmp_path / "kb") == ["kb.bin"]
    loaded = InMemoryLookupKB(vocab, 17).from_disk(tmp_path / "kb")
    assert snapshot(loaded) == snapshot(any_kb)
    assert loaded.is_read_only
    assert loaded.path == tmp_path / "kb" / "kb.bin"
    assert snapshot(loaded.copy()) == snapshot(any_kb)


def test_round_trip_keeps_alias_with_no_candidates(vocab):
    kb = InMemoryLookupKB(vocab, 1).from_bytes(build_alias_with_no_candidates(vocab).to_bytes())
    assert kb.contains_alias("alias_none") and kb.contains_alias("alias_none_2")
    assert kb.get_alias_candidates("alias_none") == []
    assert [c.entity_ for c in kb.get_alias_candidates("alias_two")] == ["Q2", "Q1"]
    assert kb.lookup_aliases(["alias_none", "alias_two", "alias_none_2"])[0].tolist() == [
        0, 0, 2, 2
    ]


def test_round_trip_keeps_1000_dim_vectors_bit_exact(vocab):
    kb = build_large_vectors(vocab)
    loaded = InMemoryLookupKB(vocab, 1).from_bytes(kb.to_bytes())
    assert loaded.entity_vector_length == 1000
    assert numpy.array_equal(loaded.vectors, kb.vectors)
    assert loaded.vectors.dtype == numpy.float32


def test_to_bytes_equals_bytes_of_kb_bin_written_by_to_disk(any_kb, tmp_path):
    any_kb.to_disk(tmp_path)
    assert (tmp_path / "kb.bin").read_bytes() == any_kb.to_bytes()


def test_to_bytes_of_mapped_kb_equals_file_and_its_to_disk_copies_it(mapped_kb, small_kb_dir,
                                                                     tmp_path):
    original = (small_kb_dir / "kb.bin").read_bytes()
    assert mapped_kb.to_bytes() == original
    mapped_kb.to_disk(tmp_path / "copy")
    assert (tmp_path / "copy" / "kb.bin").read_bytes() == original


def test_to_bytes_is_deterministic(small_kb):
    assert small_kb.to_bytes() == small_kb.to_bytes()


def test_file_starts_with_magic_and_sections_are_aligned(small_kb):
    data = small_kb.to_bytes()
    assert data[:8] == kb_format.MAGIC
    header = kb_format.read_header(data, "test")
    assert header.n_entities == 4 and header.n_aliases == 3 and header.vector_length == 3
    assert header.n_candidates == 6
    assert header.file_size == len(data)
    assert list(header.sections) == list(kb_format.SECTION_NAMES)
    for offset, _, _ in header.sections.values():
        assert offset % kb_format.ALIGNMENT == 0 and offset >= kb_format.HEADER_SIZE


def test_to_disk_creates_missing_parent_directories(small_kb, tmp_path):
    small_kb.to_disk(tmp_path / "a" / "b" / "c")
    assert (tmp_path / "a" / "b" / "c" / "kb.bin").is_file()


def test_to_disk_into_existing_file_path_raises_kb_error(small_kb, tmp_path):
    target = tmp_path / "not_a_dir"
    target.write_bytes(b"keep me")
    with pytest.raises(KBError, match="file"):
        small_kb.to_disk(target)
    assert target.read_bytes() == b"keep me"


# ------------------------------------------------------------ atomic writing


def test_to_disk_leaves_no_temp_files(small_kb, mapped_kb, tmp_path):
    target = tmp_path / "target"
    small_kb.to_disk(target)
    small_kb.to_disk(target)
    mapped_kb.to_disk(target)
    assert os.listdir(target) == ["kb.bin"]


def test_to_disk_overwrites_and_kb_mapped_from_old_file_keeps_its_content(
    small_kb, vocab, tmp_path, snapshot
):
    small_kb.to_disk(tmp_path)
    old = InMemoryLookupKB(vocab, 3).from_disk(tmp_path)
    old_state = snapshot(old)
    other = build_unicode(vocab)
    other.to_disk(tmp_path)
    assert snapshot(InMemoryLookupKB(vocab, 3).from_disk(tmp_path)) == snapshot(other)
    assert snapshot(old) == old_state  # the old mapping still reads the old file


def test_to_disk_that_fails_midway_keeps_old_file_and_leaves_no_partial_file(
    small_kb, vocab, tmp_path, monkeypatch
):
    build_unicode(vocab).to_disk(tmp_path)
    old_bytes = (tmp_path / "kb.bin").read_bytes()
    real_write = kb_format.write

    def failing_write(out, arrays, vector_length):
        real_write(out, arrays, vector_length)
        out.flush()
        out.truncate(out.tell() // 2)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(kb_format, "write", failing_write)
    with pytest.raises(OSError, match="simulated"):
        small_kb.to_disk(tmp_path)
    assert os.listdir(tmp_path) == ["kb.bin"]
    assert (tmp_path / "kb.bin").read_bytes() == old_bytes
    kb_format.validate(tmp_path)


def test_to_disk_of_mapped_kb_that_fails_keeps_old_file_and_leaves_no_partial_file(
    mapped_kb, vocab, tmp_path, monkeypatch
):
    target = tmp_path / "target"
    build_unicode(vocab).to_disk(target)
    old_bytes = (target / "kb.bin").read_bytes()

    def failing_fsync(fd):
        raise OSError("I/O error (simulated)")

    monkeypatch.setattr(kb_format.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="simulated"):
        mapped_kb.to_disk(target)
    monkeypatch.undo()
    assert os.listdir(target) == ["kb.bin"]
    assert (target / "kb.bin").read_bytes() == old_bytes


def test_to_disk_interrupted_by_keyboard_interrupt_leaves_no_partial_file(
    small_kb, tmp_path, monkeypatch
):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(kb_format.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_kb.to_disk(tmp_path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_to_disk_of_mapped_kb_onto_its_own_file_keeps_both_readable(
    mapped_kb, small_kb_dir, vocab, snapshot
):
    state = snapshot(mapped_kb)
    mapped_kb.to_disk(small_kb_dir)
    assert snapshot(mapped_kb) == state
    assert snapshot(InMemoryLookupKB(vocab, 3).from_disk(small_kb_dir)) == state
    assert os.listdir(small_kb_dir) == ["kb.bin"]


def test_views_of_a_mapped_kb_stay_valid_after_the_kb_is_dropped_or_reloaded(
    small_kb_dir, vocab, tmp_path
):
    kb = InMemoryLookupKB(vocab, 3).from_disk(small_kb_dir)
    vector = kb.vectors[1]
    vectors = kb.vectors
    hashes = kb.entity_hashes
    [cand] = kb.get_alias_candidates("alias_texas")
    build_unicode(vocab).to_disk(tmp_path / "other")
    kb.from_disk(tmp_path / "other")  # the KB now maps another file
    assert kb.get_entity_strings() == [e for e, _ in UNICODE_ENTITIES]
    del kb
    gc.collect()
    assert vector.tolist() == [0.0, 1.0, 0.0]
    assert vectors.tolist()[3] == [1.0, 1.0, 1.0]
    assert len(hashes) == 4
    assert cand.vector.tolist() == [0.0, 1.0, 0.0]


# ------------------------------------------------------------------ from_disk


def test_from_disk_of_missing_path_raises_file_not_found(vocab, tmp_path):
    with pytest.raises(FileNotFoundError):
        InMemoryLookupKB(vocab, 3).from_disk(tmp_path / "nope")


def test_from_disk_of_directory_without_kb_bin_raises_file_not_found(vocab, tmp_path):
    (tmp_path / "other.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match="kb.bin"):
        InMemoryLookupKB(vocab, 3).from_disk(tmp_path)


def test_from_disk_accepts_the_kb_bin_file_itself(small_kb_dir, vocab, small_kb, snapshot):
    kb = InMemoryLookupKB(vocab, 3).from_disk(small_kb_dir / "kb.bin")
    assert snapshot(kb) == snapshot(small_kb)


@pytest.mark.parametrize("content", [b"", b"x", b"hello world\n" * 100],
                         ids=["empty", "one-byte", "text"])
def test_from_disk_of_file_that_is_no_kb_raises_kb_format_error(vocab, tmp_path, content):
    path = tmp_path / "some_file"
    path.write_bytes(content)
    with pytest.raises(KBFormatError):
        InMemoryLookupKB(vocab, 3).from_disk(path)
    (tmp_path / "kb_dir").mkdir()
    (tmp_path / "kb_dir" / "kb.bin").write_bytes(content)
    with pytest.raises(KBFormatError):
        InMemoryLookupKB(vocab, 3).from_disk(tmp_path / "kb_dir")


def test_from_disk_of_a_spacy_kb_directory_raises_kb_format_error(vocab, tmp_path):
    import spacy.kb

    spacy_kb = spacy.kb.InMemoryLookupKB(vocab, 1)
    for i in range(40):
        spacy_kb.add_entity(f"Q{i}", 1.0, [1.0])
    assert len(spacy_kb.to_bytes()) > kb_format.HEADER_SIZE
    spacy_kb.to_disk(tmp_path / "spacy_kb")
    assert not (tmp_path / "spacy_kb" / "kb.bin").exists()
    with pytest.raises((KBFormatError, FileNotFoundError)):
        InMemoryLookupKB(vocab, 1).from_disk(tmp_path / "spacy_kb")
    with pytest.raises(KBFormatError, match="not an entity_linker KB"):
        InMemoryLookupKB(vocab, 1).from_bytes(spacy_kb.to_bytes())


def test_failed_from_disk_leaves_writable_kb_unchanged_and_writable(small_kb, tmp_path):
    (tmp_path / "kb.bin").write_bytes(b"\0" * 1000)
    before = small_kb.to_bytes()
    with pytest.raises(KBFormatError):
        small_kb.from_disk(tmp_path)
    assert small_kb.to_bytes() == before
    assert not small_kb.is_read_only
    small_kb.add_entity("Q_new", 1.0, [0.0, 0.0, 0.0])


# ------------------------------------------------------------- read-only KBs

MUTATORS = {
    "add_entity": lambda kb: kb.add_entity("Q9", 1.0, [0.0, 0.0, 0.0]),
    "add_entity-existing": lambda kb: kb.add_entity("Q1", 1.0, [0.0, 0.0, 0.0]),
    "set_entities": lambda kb: kb.set_entities(["Q9"], [1.0], [[0.0, 0.0, 0.0]]),
    "add_alias": lambda kb: kb.add_alias("alias_new", ["Q1"], [0.5]),
    "add_alias-existing": lambda kb: kb.add_alias("alias_paris", ["Q1"], [0.5]),
    "append_alias": lambda kb: kb.append_alias("alias_texas", "Q1", 0.25),
    "append_alias-invalid": lambda kb: kb.append_alias("alias_404", "Q404", 0.25),
}


@pytest.mark.parametrize("source", ["disk", "bytes"])
@pytest.mark.parametrize("mutator", list(MUTATORS))
def test_every_mutator_of_mapped_kb_raises_read_only_error_mentioning_copy(
    mapped_kb, small_kb, vocab, snapshot, source, mutator
):
    kb = mapped_kb if source == "disk" else InMemoryLookupKB(vocab, 3).from_bytes(
        small_kb.to_bytes())
    state = snapshot(kb)
    data = kb.to_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ReadOnlyKBError, match=r"copy\(\)") as info:
            MUTATORS[mutator](kb)
    assert isinstance(info.value, KBError) and isinstance(info.value, ValueError)
    assert snapshot(kb) == state
    assert kb.to_bytes() == data
    writable = kb.copy()
    assert not writable.is_read_only
    if mutator in ("add_entity", "add_alias", "append_alias"):
        MUTATORS[mutator](writable)


# ------------------------------------------------------------------- validate


def test_validate_accepts_good_file_and_directory(small_kb_dir):
    for path in (small_kb_dir, small_kb_dir / "kb.bin", str(small_kb_dir)):
        for deep in (True, False):
            header = kb_format.validate(path, deep=deep)
            assert (header.n_entities, header.n_aliases, header.n_candidates) == (4, 3, 6)
            assert header.vector_length == 3
            assert header.format_version == kb_format.FORMAT_VERSION


def test_validate_of_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        kb_format.validate(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        kb_format.validate(tmp_path)  # a directory without kb.bin


def test_validate_deep_finds_corrupt_data_that_quick_validate_misses(small_kb_dir):
    path = small_kb_dir / "kb.bin"
    data = bytearray(path.read_bytes())
    header = kb_format.read_header(bytes(data), "test")
    offset, _, _ = header.sections["vectors"]
    data[offset + 1] ^= 0x10
    path.write_bytes(bytes(data))
    kb_format.validate(path, deep=False)
    with pytest.raises(KBFormatError, match="checksum mismatch in section vectors"):
        kb_format.validate(path, deep=True)
    with pytest.raises(KBFormatError):
        kb_format.validate(small_kb_dir)


def test_validate_of_truncated_file_raises_kb_format_error_naming_the_file(small_kb_dir):
    path = small_kb_dir / "kb.bin"
    path.write_bytes(path.read_bytes()[:-10])
    for deep in (True, False):
        with pytest.raises(KBFormatError, match="truncated") as info:
            kb_format.validate(path, deep=deep)
        assert str(path) in str(info.value)


def _non_monotonic(values):
    values = values.copy()
    values[1], values[2] = values[2], values[1]
    return values


# Corruptions with all checksums valid: only the deep checks can see them.
DEEP_CORRUPTIONS = {
    "candidate-row-past-last-entity": ("candidate_rows", lambda v: numpy.where(
        numpy.arange(len(v)) == 0, 99, v)),
    "prior-above-one": ("candidate_priors", lambda v: numpy.where(
        numpy.arange(len(v)) == 0, 1.5, v)),
    "prior-nan": ("candidate_priors", lambda v: numpy.where(
        numpy.arange(len(v)) == 1, numpy.nan, v)),
    "vector-inf": ("vectors", lambda v: numpy.where(numpy.arange(len(v)) == 2, numpy.inf, v)),
    "entity-string-offsets-not-monotonic": ("entity_string_offsets", _non_monotonic),
    "alias-offsets-not-monotonic": ("alias_offsets", _non_monotonic),
    # Found by the fuzzer: 2**63 wraps to a negative int64 and hid the decrease.
    "alias-offsets-above-2**63": ("alias_offsets", lambda v: numpy.where(
        numpy.arange(len(v)) == 1, numpy.uint64(2**63), v)),
    "entity-hash-disagrees-with-table": ("entity_hashes", lambda v: v[::-1]),
    "alias-table-row-out-of-range": ("alias_slots", lambda v: numpy.where(
        v > 0, v + 100, v)),
}


@pytest.mark.parametrize("corruption", list(DEEP_CORRUPTIONS))
def test_deep_validation_catches_consistent_checksum_corruption(small_kb, corruption):
    name, change = DEEP_CORRUPTIONS[corruption]
    data = small_kb.to_bytes()
    bad = with_section(data, name, change(section_values(data, name)))
    assert bad != data
    kb_format.validate_buffer(bad, "test", deep=False)
    with pytest.raises(KBFormatError):
        kb_format.validate_buffer(bad, "test", deep=True)


# ---------------------------------------------------------- truncated files


def _truncation_points(data):
    header = kb_format.read_header(data, "test")
    points = {0, 1, 8, kb_format.HEADER_SIZE - 1, kb_format.HEADER_SIZE, len(data) - 1}
    for offset, length, _ in header.sections.values():
        points.update({offset, offset + length, offset + length // 2, offset + 1})
    return sorted(p for p in points if p < len(data))


@pytest.mark.parametrize("builder", ["unicode", "alias-with-0-candidates", "empty"])
def test_truncation_at_every_section_boundary_raises_kb_format_error(vocab, builder):
    data = BUILDERS[builder](vocab).to_bytes()
    points = _truncation_points(data)
    assert len(points) > 8
    for cut in points:
        with pytest.raises(KBFormatError):
            InMemoryLookupKB(vocab, 3).from_bytes(data[:cut])
        with pytest.raises(KBFormatError):
            kb_format.validate_buffer(data[:cut], "test", deep=True)


def test_truncation_at_random_offsets_raises_kb_format_error(vocab):
    data = build_large_vectors(vocab).to_bytes()
    rng = numpy.random.default_rng(1)
    for cut in rng.integers(0, len(data), size=50):
        with pytest.raises(KBFormatError):
            InMemoryLookupKB(vocab, 3).from_bytes(data[: int(cut)])


def test_truncated_file_on_disk_raises_kb_format_error(small_kb_dir, vocab):
    path = small_kb_dir / "kb.bin"
    data = path.read_bytes()
    header = kb_format.read_header(data, "test")
    for cut in (kb_format.HEADER_SIZE, header.sections["alias_slots"][0]):
        path.write_bytes(data[:cut])
        with pytest.raises(KBFormatError, match="truncated"):
            InMemoryLookupKB(vocab, 3).from_disk(small_kb_dir)


def test_file_with_extra_trailing_bytes_raises_kb_format_error(small_kb, vocab):
    with pytest.raises(KBFormatError, match="padded"):
        InMemoryLookupKB(vocab, 3).from_bytes(small_kb.to_bytes() + b"\0")


# ----------------------------------------------------------------- bad headers


def test_wrong_magic_raises_kb_format_error(small_kb, vocab):
    data = bytearray(small_kb.to_bytes())
    data[:8] = b"NOTAKB\0\0"
    with pytest.raises(KBFormatError, match="not an entity_linker KB"):
        InMemoryLookupKB(vocab, 3).from_bytes(bytes(data))
    with pytest.raises(KBFormatError, match="not an entity_linker KB"):
        InMemoryLookupKB(vocab, 3).from_bytes(fix_header_crc(data))


@pytest.mark.parametrize("version", [0, 5, 2**32 - 1])
def test_wrong_version_raises_kb_format_error_naming_the_version(small_kb, vocab, version):
    data = with_header_fields(small_kb.to_bytes(), version=version)
    with pytest.raises(KBFormatError, match=f"version {version}"):
        InMemoryLookupKB(vocab, 3).from_bytes(data)


def test_bad_header_checksum_raises_kb_format_error(small_kb, vocab):
    data = small_kb.to_bytes()
    for position in (40, kb_format._HEAD.size + 5, kb_format._CRC_OFFSET - 1,
                     kb_format._CRC_OFFSET):
        bad = bytearray(data)
        bad[position] ^= 0x01
        with pytest.raises(KBFormatError, match="checksum"):
            InMemoryLookupKB(vocab, 3).from_bytes(bytes(bad))


HEADER_CHANGES = {
    "endian-marker": {"endian": 0x04030201},
    "more-entities": {"n_entities": 5},
    "fewer-aliases": {"n_aliases": 2},
    "more-candidates": {"n_candidates": 7},
    "vector-length": {"vector_length": 4},
    "absurd-vector-length": {"vector_length": 2**40},
    "cells-not-power-of-two": {"entity_cells_length": 12},
    "cells-too-small": {"alias_cells_length": 2},
    "n-sections": {"n_sections": 12},
    "file-size": {"file_size": 10},
}


@pytest.mark.parametrize("change", list(HEADER_CHANGES))
def test_inconsistent_header_with_valid_checksum_raises_kb_format_error(small_kb, vocab, change):
    data = with_header_fields(small_kb.to_bytes(), **HEADER_CHANGES[change])
    with pytest.raises(KBFormatError):
        InMemoryLookupKB(vocab, 3).from_bytes(data)


def test_section_outside_file_or_misaligned_raises_kb_format_error(small_kb, vocab):
    data = small_kb.to_bytes()
    entry = kb_format._HEAD.size + 2 * kb_format._SECTION.size  # "vectors"
    section_id, crc, offset, length, reserved = kb_format._SECTION.unpack_from(data, entry)
    for new_offset, new_length in ((offset + 1, length), (offset, len(data)),
                                   (kb_format.HEADER_SIZE, length), (2**63, length)):
        bad = bytearray(data)
        kb_format._SECTION.pack_into(bad, entry, section_id, crc, new_offset, new_length,
                                     reserved)
        with pytest.raises(KBFormatError):
            InMemoryLookupKB(vocab, 3).from_bytes(fix_header_crc(bad))


@pytest.mark.parametrize("name", ["entity_string_offsets", "alias_string_offsets",
                                  "alias_offsets"])
def test_offsets_not_spanning_their_data_raise_kb_format_error_at_open(small_kb, vocab, name):
    data = small_kb.to_bytes()
    values = section_values(data, name)
    for index, delta in ((0, 1), (-1, 1), (-1, -1)):
        changed = values.copy()
        changed[index] = changed[index] + numpy.uint64(1) if delta > 0 else changed[index] - 1
        with pytest.raises(KBFormatError):
            InMemoryLookupKB(vocab, 3).from_bytes(with_section(data, name, changed))


# --------------------------------------------------- corruption inside sections

# An odd KB for the flip tests: unicode strings, an alias without candidates.
FLIP_ALIASES = ["Zürich", "東京都", "🦄🦄", "alias_empty"]
FLIP_ENTITIES = [entity for entity, _ in UNICODE_ENTITIES]
NUMERIC_SECTIONS = ("entity_hashes", "entity_freqs", "vectors", "alias_hashes",
                    "candidate_priors")


@pytest.fixture(scope="module")
def flip_data(nlp):
    data = build_unicode(nlp.vocab).to_bytes()
    return data, kb_format.read_header(data, "test")


@pytest.fixture(scope="module")
def flip_doc(nlp):
    return nlp.make_doc("Zürich 東京都 🦄🦄 alias_empty nothing")


def flipped(data, position, xor):
    out = bytearray(data)
    out[position] ^= xor
    return bytes(out)


@flip_settings(300)
@given(position=st.integers(0, 10**9), xor=st.integers(1, 255))
def test_random_byte_flip_is_caught_by_open_or_deep_validation(
    nlp, flip_data, snapshot, position, xor
):
    data, header = flip_data
    position %= len(data)
    bad = flipped(data, position, xor)
    try:
        kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(bad)
    except KBFormatError:
        return
    assert position >= kb_format.HEADER_SIZE  # the header is checksummed
    if section_of(header, position) is None:  # alignment padding: not data
        kb_format.validate_buffer(bad, "test", deep=True)
        assert snapshot(kb) == snapshot(InMemoryLookupKB(nlp.vocab, 2).from_bytes(data))
    else:
        with pytest.raises(KBFormatError, match="checksum"):
            kb_format.validate_buffer(bad, "test", deep=True)


@flip_settings(200)
@given(section=st.sampled_from(NUMERIC_SECTIONS), index=st.integers(0, 10**6),
       xor=st.integers(1, 255))
def test_random_byte_flip_in_numeric_section_leaves_read_api_working_or_kb_format_error(
    nlp, flip_data, flip_doc, section, index, xor
):
    data, header = flip_data
    offset, length, _ = header.sections[section]
    bad = flipped(data, offset + index % length, xor)
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(bad)  # quick open: data is not read
    try:
        exercise_read_api_and_copy(kb, FLIP_ALIASES, FLIP_ENTITIES, flip_doc)
    except KBFormatError:
        pass


@flip_settings(300)
@given(position=st.integers(0, 10**9), xor=st.integers(1, 255))
def test_random_byte_flip_anywhere_makes_read_api_work_or_raise_only_kb_format_error(
    nlp, flip_data, flip_doc, position, xor
):
    data, _ = flip_data
    bad = flipped(data, position % len(data), xor)
    try:
        kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(bad)
    except KBFormatError:
        return
    try:
        exercise_read_api_and_copy(kb, FLIP_ALIASES, FLIP_ENTITIES, flip_doc)
    except KBFormatError:
        pass


def _corrupt_candidate_row(data):
    return with_section(data, "candidate_rows",
                        numpy.full_like(section_values(data, "candidate_rows"), 77))


def _corrupt_entity_table(data):
    slots = section_values(data, "entity_slots")
    return with_section(data, "entity_slots", numpy.where(slots > 0, slots + 50, 0))


def _corrupt_alias_table(data):
    slots = section_values(data, "alias_slots")
    return with_section(data, "alias_slots", numpy.where(slots > 0, slots + 50, 0))


def _corrupt_alias_offsets(data):
    return with_section(data, "alias_offsets",
                        _non_monotonic(section_values(data, "alias_offsets")))


INDEX_CORRUPTIONS = {
    "candidate-row-out-of-range": (_corrupt_candidate_row,
                                   lambda kb: kb.get_alias_candidates("Zürich")),
    "entity-table-row-out-of-range": (_corrupt_entity_table,
                                      lambda kb: kb.get_vector("Zürich")),
    "alias-table-row-out-of-range": (_corrupt_alias_table,
                                     lambda kb: kb.lookup_aliases(["Zürich"])),
    "alias-offsets-not-monotonic": (_corrupt_alias_offsets,
                                    lambda kb: kb.get_alias_candidates("東京都")),
}


@pytest.mark.parametrize("corruption", list(INDEX_CORRUPTIONS))
def test_index_corruption_is_not_hidden_by_quick_open(nlp, flip_data, corruption):
    corrupt, read = INDEX_CORRUPTIONS[corruption]
    bad = corrupt(flip_data[0])
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(bad)  # O(1) open: not checked yet
    with pytest.raises(KBFormatError):
        kb_format.validate_buffer(bad, "test", deep=True)
    with pytest.raises(Exception):  # noqa: B017 - the exact type is checked below (xfail)
        read(kb)


@pytest.mark.parametrize("corruption", list(INDEX_CORRUPTIONS))
def test_index_corruption_found_by_lookup_raises_kb_format_error(nlp, flip_data, corruption):
    corrupt, read = INDEX_CORRUPTIONS[corruption]
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(corrupt(flip_data[0]))
    with pytest.raises(KBFormatError, match="corrupt"):
        read(kb)


@pytest.mark.parametrize("section, read", [
    ("entity_strings", lambda kb: kb.get_entity_strings()),
    ("entity_strings", lambda kb: kb.get_entity_id(0)),
    ("alias_strings", lambda kb: kb.get_alias_strings()),
    ("entity_strings", lambda kb: [c.entity_ for c in kb.get_alias_candidates("Zürich")]),
], ids=["get_entity_strings", "get_entity_id", "get_alias_strings", "candidate-entity_"])
def test_invalid_utf8_in_string_section_raises_kb_format_error(nlp, flip_data, section, read):
    data, _ = flip_data
    values = section_values(data, section)
    values[0] = 0xFF  # never valid in UTF-8
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(with_section(data, section, values))
    with pytest.raises(KBFormatError):
        read(kb)


@pytest.mark.parametrize("section", ["entity_string_offsets", "alias_string_offsets"])
@pytest.mark.parametrize("change", ["decrease", "huge"])
def test_bad_string_offsets_raise_kb_format_error_on_decoding_all(nlp, flip_data, section,
                                                                   change):
    # (Opening the file checks the last offset only.)
    data, _ = flip_data
    values = section_values(data, section)
    values[1] = values[2] + 1 if change == "decrease" else numpy.iinfo(values.dtype).max
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(with_section(data, section, values))
    read = kb.get_entity_strings if section.startswith("entity") else kb.get_alias_strings
    with pytest.raises(KBFormatError, match="corrupt"):
        read()


def test_offsets_that_wrap_around_int64_count_as_decreasing():
    # The fuzzer's case: as int64 these diffs overflow and all look >= 0.
    wrapped = numpy.array([0, 2, 3, 2**63, 2**64 - 1, 9], dtype=numpy.uint64)
    assert numpy.all(numpy.diff(wrapped.astype(numpy.int64)) >= 0)
    assert kb_format._decreases(wrapped)
    assert not kb_format._decreases(numpy.array([0, 2, 2, 9], dtype=numpy.uint64))


def test_string_offsets_are_narrow_when_they_fit_and_wide_files_read_the_same(small_kb, vocab):
    narrow = small_kb.to_bytes()
    assert kb_format.read_header(narrow, "test").flags == kb_format.FLAG_NARROW_STRING_OFFSETS
    out = io.BytesIO()
    kb_format.write(out, small_kb._compact_arrays(), small_kb.entity_vector_length,
                    narrow_strings=False)
    wide = out.getvalue()
    wide_header = kb_format.read_header(wide, "test")
    assert wide_header.flags == 0
    narrow_header = kb_format.read_header(narrow, "test")
    for name in ("entity_string_offsets", "alias_string_offsets"):
        assert wide_header.sections[name][1] == 2 * narrow_header.sections[name][1]
    kb_format.validate_buffer(wide, "wide", deep=True)
    for data in (narrow, wide):
        kb = InMemoryLookupKB(vocab, 1).from_bytes(data)
        assert kb.get_entity_strings() == small_kb.get_entity_strings()
        assert kb.get_alias_strings() == small_kb.get_alias_strings()


@pytest.mark.parametrize("flags", [2, 0x80000000])
def test_unknown_header_flags_raise_kb_format_error(small_kb, flags):
    data = with_header_fields(small_kb.to_bytes(), flags=flags)
    with pytest.raises(KBFormatError, match="flags"):
        kb_format.read_header(data, "test")


# ------------------------------------------------------- spaCy parity: files


def test_from_disk_of_a_missing_path_raises_a_value_error_like_spacy(vocab, tmp_path):
    from entity_linker.errors import KBNotFoundError

    for path in (tmp_path / "nothing", tmp_path / "nothing" / "kb.bin"):
        with pytest.raises(ValueError, match="does not exist"):
            InMemoryLookupKB(vocab, 3).from_disk(path)
        with pytest.raises(FileNotFoundError):
            InMemoryLookupKB(vocab, 3).from_disk(path)
        with pytest.raises(KBNotFoundError):
            InMemoryLookupKB(vocab, 3).from_disk(path)


def test_a_folder_saved_by_spacy_gets_a_conversion_hint(vocab, tmp_path):
    from spacy.kb import InMemoryLookupKB as SpacyKB

    theirs = SpacyKB(vocab, 2)
    theirs.add_entity("Q1", 5.0, [1.0, 2.0])
    theirs.add_entity("Q2", 3.0, [0.0, 1.0])
    theirs.add_entity("Q3", 1.0, [1.0, 1.0])  # no alias refers to it
    theirs.add_alias("Paris", ["Q1", "Q2"], [0.7, 0.2])
    theirs.to_disk(tmp_path / "spacy_kb")
    with pytest.raises(KBFormatError, match="from_spacy"):
        InMemoryLookupKB(vocab, 2).from_disk(tmp_path / "spacy_kb")
    loaded = SpacyKB(vocab, 2)
    loaded.from_disk(tmp_path / "spacy_kb")  # spaCy's from_disk returns None
    ours = InMemoryLookupKB.from_spacy(loaded)
    ours.to_disk(tmp_path / "ours")
    mapped = InMemoryLookupKB(vocab, 2).from_disk(tmp_path / "ours")
    assert sorted(mapped.get_entity_strings()) == ["Q1", "Q2", "Q3"]
    assert [(c.entity_, c.prior_prob, c.entity_freq)
            for c in mapped.get_alias_candidates("Paris")] == [
        ("Q1", pytest.approx(0.7), 5.0), ("Q2", pytest.approx(0.2), 3.0)]
    assert mapped.get_vector("Q3") == [1.0, 1.0]


def test_write_contents_and_read_contents_round_trip_a_subclass(vocab, tmp_path):
    class Custom(InMemoryLookupKB):
        def to_disk(self, path, exclude=()):
            path.mkdir(parents=True, exist_ok=True)
            self.write_contents(path / "contents")
            (path / "custom").write_text(str(self.custom_field))

        def from_disk(self, path, exclude=()):
            self.read_contents(path / "contents")
            self.custom_field = int((path / "custom").read_text())
            return self

    kb = Custom(vocab, 1)
    kb.custom_field = 666
    kb.add_entity("random_entity", 0.0, [0.0])
    kb.to_disk(tmp_path / "custom_kb")
    loaded = Custom(vocab, 1)
    loaded.custom_field = 0
    loaded.from_disk(tmp_path / "custom_kb")
    assert loaded.custom_field == 666 and loaded.get_entity_strings() == ["random_entity"]
    assert not list(tmp_path.glob("custom_kb/.*.tmp"))  # written atomically


def test_verify_checks_every_checksum_before_serving(small_kb, vocab, tmp_path):
    small_kb.to_disk(tmp_path / "kb")
    data = bytearray((tmp_path / "kb" / "kb.bin").read_bytes())
    offset, length, _ = kb_format.read_header(bytes(data), "test").sections["vectors"]
    data[offset] ^= 0x40  # a flipped bit in a vector: opening alone cannot tell
    (tmp_path / "kb" / "kb.bin").write_bytes(bytes(data))
    InMemoryLookupKB(vocab, 3).from_disk(tmp_path / "kb")  # O(1) open: accepted
    with pytest.raises(KBFormatError, match="checksum mismatch in section vectors"):
        InMemoryLookupKB(vocab, 3).from_disk(tmp_path / "kb", verify=True)
    with pytest.raises(KBFormatError, match="checksum mismatch"):
        InMemoryLookupKB(vocab, 3).from_bytes(bytes(data), verify=True)
    from entity_linker.registry import load_kb

    with pytest.raises(KBFormatError, match="checksum mismatch"):
        load_kb(tmp_path / "kb", verify=True)(vocab)
    assert load_kb(tmp_path / "kb")(vocab).get_size_entities() == 4

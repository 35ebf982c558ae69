"""The alias index in the KB file (format version 2): round trips, files
without index, version 1 files, truncation and corruption of the index
sections (docs/FORMAT.md)."""

import io
import struct
import zlib

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kb_bytes import section_values, with_section, with_section_crc

from entity_linker import InMemoryLookupKB
from entity_linker.candidates import CascadeCandidates, FuzzyCandidates, NormalizedCandidates
from entity_linker.errors import KBError, KBFormatError
from entity_linker.kb import format as kb_format
from entity_linker.kb.normalize import AliasNormalizer

INDEX_NAMES = [name for name, _ in kb_format.INDEX_SECTIONS]
QUERIES = ["st louis", "SAINT-LOUIS", "pittsburg", "Zurich", "mount hood", "Mt Hood",
           "nowhere", "", "..."]
FLIP_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ------------------------------------------------------------------ helpers


def with_index_config(data, config):
    """data re-laid out by the writer with other index_config bytes (any length)."""
    header, views = kb_format.open_views(data, "test")
    arrays = dict(views)
    arrays["index_config"] = numpy.frombuffer(config, dtype="u1")
    out = io.BytesIO()
    kb_format.write(out, arrays, header.vector_length)
    return out.getvalue()


def to_version1(data):
    """The version 1 image of a version 2 image without index: a 512-byte header
    (13 table entries at 80, header CRC-32 at 508), the 13 base sections
    re-packed at 64-aligned offsets from 512, the slot tables turned into
    version 1's (key, row + 1) cells and the string offsets widened to uint64."""
    header = kb_format.read_header(data, "test")
    assert not header.has_alias_index
    fields = list(kb_format._HEAD.unpack_from(data))
    fields[1] = 1  # format_version
    fields[10] = 13  # n_sections
    fields[11] = 0  # flags: version 1 has uint64 string offsets
    out = bytearray(512)
    position = 512
    _, views = kb_format.open_views(data, "test")
    for index, (name, _) in enumerate(kb_format.BASE_SECTIONS_V1):
        if name.endswith("_cells"):  # version 1 tables: (key, row + 1) cells, same slots
            kind = name[: -len("_cells")]
            slots = views[f"{kind}_slots"].astype(numpy.uint64)
            cells = numpy.zeros((len(slots), 2), dtype="<u8")
            used = slots > 0
            cells[used, 0] = views[f"{kind}_hashes"][(slots[used] - 1).astype(numpy.int64)]
            cells[used, 1] = slots[used]
            blob = cells.tobytes()
        elif name.endswith("_string_offsets"):
            blob = views[name].astype("<u8").tobytes()
        else:
            offset, length, _ = header.sections[name]
            blob = bytes(data[offset : offset + length])
        position = (position + 63) // 64 * 64
        kb_format._SECTION.pack_into(out, 80 + 32 * index, index, zlib.crc32(blob), position,
                                     len(blob), 0)
        out.extend(bytes(position - len(out)))
        out.extend(blob)
        position += len(blob)
    fields[3] = len(out)  # file_size
    kb_format._HEAD.pack_into(out, 0, *fields)
    struct.pack_into("<I", out, 508, zlib.crc32(bytes(out[:508])))
    return bytes(out)


def lookups(kb, queries=QUERIES):
    """Everything the index answers for queries, as plain lists."""
    index = kb.alias_index
    rows = index.key_rows(queries)
    result = [rows.tolist()] + [array.tolist() for array in index.gather(rows)]
    if index.has_fuzzy:
        result += [array.tolist() for array in index.search(queries, 0.5, 5)]
    return result


def exercise_index(kb, queries=QUERIES):
    """Every index lookup and the generators that read the index."""
    index = kb.alias_index
    index.gather(index.key_rows(queries + kb.get_alias_strings()))
    index.gather(numpy.arange(index.n_keys))
    if index.has_fuzzy:
        for min_score, max_keys in ((0.5, 5), (1.0, 2), (0.1, 50)):
            _, rows, _ = index.search(queries, min_score, max_keys)
            index.gather(rows)
        for generator in (FuzzyCandidates(0.5, 5), CascadeCandidates(k=5, min_score=0.5)):
            kb.candidates_from_arrays(*generator.arrays(kb, queries))
    kb.candidates_from_arrays(*NormalizedCandidates().arrays(kb, queries))


def build_places(vocab, index=True, **index_settings):
    """Five places, seven aliases (three share the key "saint louis")."""
    kb = InMemoryLookupKB(vocab, entity_vector_length=2)
    for row, entity in enumerate(["Q_stl", "Q_pgh", "Q_zrh", "Q_hood", "Q_other"]):
        kb.add_entity(entity, float(row + 1), [float(row), 1.0])
    kb.add_alias("St. Louis", ["Q_stl", "Q_other"], [0.75, 0.125])
    kb.add_alias("Saint Louis", ["Q_stl"], [0.5])
    kb.add_alias("SAINT-LOUIS", ["Q_other"], [0.25])
    kb.add_alias("Pittsburgh", ["Q_pgh"], [1.0])
    kb.add_alias("Zürich", ["Q_zrh", "Q_other"], [0.875, 0.0625])
    kb.add_alias("Mt. Hood", ["Q_hood"], [0.5])
    kb.add_alias("...", ["Q_other"], [0.5])  # normalises to nothing: no key
    if index:
        kb.build_alias_index(**index_settings)
    return kb


@pytest.fixture(scope="module")
def places_data(nlp):
    return build_places(nlp.vocab).to_bytes()


def load(vocab, data):
    return InMemoryLookupKB(vocab, 1).from_bytes(data)


# ------------------------------------------------------------------ round trips


INDEX_SETTINGS = {
    "default": {},
    "no-trigrams": {"fuzzy": False},
    "own-expansions": {"normalizer": AliasNormalizer({"saint": "st", "hood": "hd"})},
}


@pytest.mark.parametrize("setting", list(INDEX_SETTINGS))
def test_index_round_trips_through_bytes_and_disk_with_same_lookups(vocab, tmp_path, setting):
    kb = build_places(vocab, **INDEX_SETTINGS[setting])
    expected = lookups(kb)
    data = kb.to_bytes()
    assert kb_format.read_header(data, "test").has_alias_index
    kb.to_disk(tmp_path / "kb")
    for loaded in (load(vocab, data), InMemoryLookupKB(vocab, 1).from_disk(tmp_path / "kb")):
        index = loaded.alias_index
        assert index is not None
        assert index.normalizer == kb.alias_index.normalizer
        assert index.has_fuzzy == kb.alias_index.has_fuzzy
        assert (index.n_keys, index.n_grams) == (kb.alias_index.n_keys, kb.alias_index.n_grams)
        assert lookups(loaded) == expected
        assert loaded.to_bytes() == data
    kb_format.validate(tmp_path / "kb", deep=True)


def test_loaded_index_answers_normalised_and_fuzzy_queries(vocab, places_data):
    # Guards the round-trip tests against comparing empty answers.
    kb = load(vocab, places_data)
    index = kb.alias_index
    rows = index.key_rows(["st louis", "SAINT-LOUIS", "nowhere", "..."])
    assert rows[0] == rows[1] >= 0 and rows[2] == rows[3] == -1
    offsets, entity_rows, priors, alias_rows = index.gather(rows[:1])
    assert [kb.get_entity_id(int(row)) for row in entity_rows] == ["Q_stl", "Q_other"]
    assert priors.tolist() == [0.75, 0.25]  # the best prior under any alias of the key
    assert [kb.get_alias_strings()[row] for row in alias_rows] == ["St. Louis", "SAINT-LOUIS"]
    offsets, key_rows, scores = index.search(["pittsburg"], 0.5, 5)
    assert offsets.tolist() == [0, 1]
    assert key_rows[0] == index.key_rows(["Pittsburgh"])[0] and 0.5 <= scores[0] < 1.0


def test_copy_of_loaded_kb_keeps_index_and_writes_it_again(vocab, places_data):
    copied = load(vocab, places_data).copy()
    assert lookups(copied) == lookups(load(vocab, places_data))
    assert copied.to_bytes() == places_data


def test_kb_without_index_saves_and_loads_without_index(vocab, tmp_path):
    kb = build_places(vocab, index=False)
    assert kb.alias_index is None
    data = kb.to_bytes()
    header = kb_format.read_header(data, "test")
    assert header.format_version == kb_format.FORMAT_VERSION and not header.has_alias_index
    assert all(header.sections[name][1] == 0 for name in INDEX_NAMES)
    kb.to_disk(tmp_path / "kb")
    for loaded in (load(vocab, data), InMemoryLookupKB(vocab, 1).from_disk(tmp_path / "kb")):
        assert loaded.alias_index is None
        assert [c.entity_ for c in loaded.get_alias_candidates("St. Louis")] == [
            "Q_stl", "Q_other"]
    kb_format.validate(tmp_path / "kb", deep=True)


def test_index_settings_without_index_sections_and_sections_without_settings_are_refused(
    vocab, places_data
):
    config = section_values(places_data, "index_config").tobytes()
    with pytest.raises(KBFormatError, match="without index settings"):
        load(vocab, with_index_config(places_data, b""))
    header, views = kb_format.open_views(places_data, "test")
    arrays = {name: views[name] for name in kb_format.SECTION_NAMES}
    for name in INDEX_NAMES[1:]:
        arrays[name] = arrays[name][:0]
    arrays["index_config"] = numpy.frombuffer(config, dtype="u1")
    out = io.BytesIO()
    kb_format.write(out, arrays, header.vector_length)
    with pytest.raises(KBFormatError, match="alias index is corrupt"):
        load(vocab, out.getvalue())


# ------------------------------------------------------------------ version 1


def test_version_1_file_is_read_and_has_no_index(vocab, tmp_path):
    kb = build_places(vocab, index=False)
    v2_data = kb.to_bytes()
    v1_data = to_version1(v2_data)
    assert len(v1_data) < len(v2_data)
    header = kb_format.validate_buffer(v1_data, "v1", deep=True)
    assert header.format_version == 1 and not header.has_alias_index
    assert set(header.sections) == {name for name, _ in kb_format.BASE_SECTIONS_V1}
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "kb.bin").write_bytes(v1_data)
    for loaded in (load(vocab, v1_data), InMemoryLookupKB(vocab, 1).from_disk(tmp_path / "kb")):
        assert loaded.alias_index is None
        assert loaded.get_alias_strings() == kb.get_alias_strings()
        for alias in kb.get_alias_strings():
            assert [(c.entity_, c.prior_prob) for c in loaded.get_alias_candidates(alias)] == [
                (c.entity_, c.prior_prob) for c in kb.get_alias_candidates(alias)]
        assert loaded.to_bytes() == v1_data  # a loaded image is served unchanged
        upgraded = loaded.copy().to_bytes()  # a copy writes the current version
        assert kb_format.read_header(upgraded, "test").format_version == kb_format.FORMAT_VERSION
        assert load(vocab, upgraded).alias_index is None


def test_version_1_file_gets_an_index_in_memory_and_writes_the_current_version(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.add_entity("Q1", 1.0, [1.0, 0.0])
    kb.add_alias("St. Louis", ["Q1"], [0.5])
    loaded = load(vocab, to_version1(kb.to_bytes()))
    loaded.build_alias_index()
    data = loaded.to_bytes()
    header = kb_format.validate_buffer(data, "test", deep=True)
    assert header.format_version == kb_format.FORMAT_VERSION and header.has_alias_index
    assert load(vocab, data).alias_index.key_rows(["saint louis"]).tolist() == [0]


@pytest.mark.parametrize("n_sections", [12, 25])
def test_version_1_header_with_wrong_section_count_raises_kb_format_error(vocab, n_sections):
    kb = InMemoryLookupKB(vocab, 2)
    data = bytearray(to_version1(kb.to_bytes()))
    struct.pack_into("<I", data, 72, n_sections)
    struct.pack_into("<I", data, 508, zlib.crc32(bytes(data[:508])))
    with pytest.raises(KBFormatError, match="sections"):
        load(vocab, bytes(data))


# ------------------------------------------------------------------ truncation


def test_truncation_at_every_index_section_boundary_raises_kb_format_error(vocab, places_data):
    header = kb_format.read_header(places_data, "test")
    points = set()
    for name in INDEX_NAMES:
        offset, length, _ = header.sections[name]
        points.update({offset, offset + 1, offset + length // 2, offset + length - 1,
                       offset + length})
    points = sorted(p for p in points if p < len(places_data))
    assert len(points) > 30
    for cut in points:
        with pytest.raises(KBFormatError, match="truncated"):
            load(vocab, places_data[:cut])
        with pytest.raises(KBFormatError):
            kb_format.validate_buffer(places_data[:cut], "test", deep=True)


# ------------------------------------------------------------------ consistent corruption


def _bump_first(name, new_value):
    def corrupt(data):
        values = section_values(data, name)
        values[0] = new_value(values, data)
        return with_section(data, name, values)
    return corrupt


def _n_entities(values, data):
    return kb_format.read_header(data, "test").n_entities


def _n_aliases(values, data):
    return kb_format.read_header(data, "test").n_aliases


def _n_keys(values, data):
    return len(section_values(data, "norm_hashes"))


def _cell_values_out_of_range(name):
    def corrupt(data):
        slots = section_values(data, name)
        return with_section(data, name, numpy.where(slots > 0, slots + 50, 0))
    return corrupt


def _non_monotonic(name):
    def corrupt(data):
        offsets = section_values(data, name)
        assert len(offsets) >= 3
        offsets[1] = offsets[-1] + 1 if offsets[-1] else 7
        return with_section(data, name, offsets)
    return corrupt


# section -> (corruption that deep validation must catch, a read it must make fail or None)
INDEX_CORRUPTIONS = {
    # A slot table stores no keys, so a changed hash is caught when it repeats another.
    "norm_hashes": (_bump_first("norm_hashes", lambda v, d: v[1]), None),
    "norm_offsets": (_non_monotonic("norm_offsets"), None),
    "norm_entity_rows": (
        lambda data: with_section(data, "norm_entity_rows", numpy.full_like(
            section_values(data, "norm_entity_rows"), _n_entities(None, data))),
        lambda kb: kb.alias_index.gather(kb.alias_index.key_rows(["st louis"]))),
    "norm_priors": (_bump_first("norm_priors", lambda v, d: numpy.nan), None),
    "norm_alias_rows": (
        lambda data: with_section(data, "norm_alias_rows", numpy.full_like(
            section_values(data, "norm_alias_rows"), _n_aliases(None, data))),
        lambda kb: kb.alias_index.gather(kb.alias_index.key_rows(["st louis"]))),
    "norm_slots": (_cell_values_out_of_range("norm_slots"),
                   lambda kb: kb.alias_index.key_rows(["st louis"])),
    "norm_gram_counts": (_bump_first("norm_gram_counts", lambda v, d: 0), None),
    "gram_keys": (_bump_first("gram_keys", lambda v, d: v[1]), None),
    "gram_offsets": (_non_monotonic("gram_offsets"), None),
    "gram_postings": (_bump_first("gram_postings", _n_keys), None),
    "gram_slots": (_cell_values_out_of_range("gram_slots"),
                   lambda kb: kb.alias_index.search(["st louis"], 0.5, 5)),
}


def test_every_index_section_has_a_corruption_case():
    assert set(INDEX_CORRUPTIONS) | {"index_config"} == set(INDEX_NAMES)


@pytest.mark.parametrize("name", list(INDEX_CORRUPTIONS))
def test_consistent_index_corruption_is_caught_by_deep_validation_only(vocab, places_data,
                                                                       name):
    corrupt, _ = INDEX_CORRUPTIONS[name]
    bad = corrupt(places_data)
    assert bad != places_data
    kb_format.validate_buffer(bad, "test", deep=False)  # CRCs agree: the quick checks pass
    with pytest.raises(KBFormatError, match="test"):
        kb_format.validate_buffer(bad, "test", deep=True)


@pytest.mark.parametrize("name", list(INDEX_CORRUPTIONS))
def test_lookups_on_corrupt_index_work_or_raise_kb_format_error(vocab, places_data, name):
    corrupt, failing_read = INDEX_CORRUPTIONS[name]
    kb = load(vocab, corrupt(places_data))  # quick open: the index is not read
    try:
        exercise_index(kb)
    except KBFormatError:
        pass
    if failing_read is not None:
        with pytest.raises(KBFormatError, match="corrupt"):
            failing_read(kb)


def test_written_index_numbers_keys_by_ascending_trigram_count_with_sorted_postings(
    places_data
):
    counts = section_values(places_data, "norm_gram_counts").astype(numpy.int64)
    assert len(counts) == 4 and numpy.all(numpy.diff(counts) >= 0)
    postings = section_values(places_data, "gram_postings").astype(numpy.int64)
    offsets = section_values(places_data, "gram_offsets").astype(numpy.int64)
    for start, end in zip(offsets[:-1], offsets[1:]):
        assert numpy.all(numpy.diff(postings[start:end]) > 0)
    assert numpy.array_equal(numpy.bincount(postings, minlength=len(counts)), counts)


def test_deep_validation_does_not_check_index_order(vocab, places_data):
    # Documented limits: postings out of order and key rows not ordered by gram
    # count give wrong fuzzy answers, never unsafe reads, and pass validation.
    counts = section_values(places_data, "norm_gram_counts")
    assert not numpy.array_equal(counts[::-1], counts)
    bad = with_section(places_data, "norm_gram_counts", counts[::-1])
    postings = section_values(bad, "gram_postings")
    bad = with_section(bad, "gram_postings", postings[::-1])
    kb_format.validate_buffer(bad, "test", deep=True)
    exercise_index(load(vocab, bad))


@pytest.mark.parametrize("config", [b"{", b"[]", b'{"fuzzy": true}', b"\xff",
                                    b'{"normalizer": {"version": 99}, "fuzzy": true}'])
def test_corrupt_index_settings_raise_kb_format_error_at_open(vocab, places_data, config):
    with pytest.raises(KBFormatError, match="alias index settings are corrupt"):
        load(vocab, with_index_config(places_data, config))


def test_deep_validation_catches_corrupt_index_settings(places_data):
    bad = with_index_config(places_data, b"{")
    with pytest.raises(KBFormatError):
        kb_format.validate_buffer(bad, "test", deep=True)


def test_deeply_nested_index_settings_raise_kb_format_error(vocab, places_data):
    bad = with_index_config(places_data, b"[" * 5000)
    with pytest.raises(KBFormatError):
        load(vocab, bad)


# ------------------------------------------------------------------ random flips


@pytest.fixture(scope="module")
def index_area(places_data):
    header = kb_format.read_header(places_data, "test")
    start = header.sections["index_config"][0]
    return start, len(places_data)


@FLIP_SETTINGS
@given(position=st.integers(0, 10**9), xor=st.integers(1, 255), fix_crcs=st.booleans())
def test_random_byte_flip_in_index_area_gives_lookups_or_only_kb_errors(
    vocab, places_data, index_area, position, xor, fix_crcs
):
    start, end = index_area
    position = start + position % (end - start)
    bad = bytearray(places_data)
    bad[position] ^= xor
    header = kb_format.read_header(places_data, "test")
    name = next((n for n, (offset, length, _) in header.sections.items()
                 if offset <= position < offset + length), None)
    bad = bytes(bad)
    if name is not None and fix_crcs:
        bad = with_section_crc(bad, name)  # only the values can give it away now
    elif name is not None:  # the quick checks or the section checksum catch it
        with pytest.raises(KBFormatError):
            kb_format.validate_buffer(bad, "test", deep=True)
    try:
        kb = load(vocab, bad)
    except KBFormatError:
        return
    if kb.alias_index is None:
        return
    try:
        exercise_index(kb)
    except KBError:  # KBFormatError, or another deliberate KBError (both ValueErrors)
        pass


def test_index_of_aliases_that_all_normalise_to_nothing_has_no_keys(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    kb.add_entity("Q1", 1.0, [1.0])
    kb.add_alias("...", ["Q1"], [0.5])
    index = kb.build_alias_index()
    assert index.n_keys == 0 and index.key_rows(["..."]).tolist() == [-1]
    assert load(vocab, kb.to_bytes()).alias_index.n_keys == 0


def test_file_of_another_version_is_reported_by_its_version_whatever_its_header_holds(vocab):
    data = bytearray(InMemoryLookupKB(vocab, 2).to_bytes())
    struct.pack_into("<I", data, 8, 5)  # format_version
    struct.pack_into("<Q", data, 48, 2**20)  # vector_length
    with pytest.raises(KBFormatError, match="version 5"):
        load(vocab, bytes(data))

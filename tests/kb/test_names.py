"""Entity names in the KB: the API, the file (format version 4) round trips,
memory-mapped reads, version 3 files, and corrupt names."""

import io
import pickle

import pytest
from kb_bytes import downgraded, section_values, with_section

from entity_linker import InMemoryLookupKB
from entity_linker.errors import (
    KBFormatError,
    KBTypeError,
    LengthMismatchError,
    ReadOnlyKBError,
    UnknownEntityError,
)
from entity_linker.kb import format as kb_format

IDS = ["Q1", "Q2", "Q3", "Q4"]
NAMES = {"Q1": "Leicester City F.C.", "Q3": "Łódź", "Q4": "Italy national rugby union team"}


def build(vocab, names=True):
    kb = InMemoryLookupKB(vocab, 2)
    kb.set_entities(IDS, [1.0] * len(IDS), [[1.0, 0.0]] * len(IDS))
    kb.add_alias("Leicester", ["Q1", "Q2"], [0.3, 0.6])
    if names:
        kb.set_names(list(NAMES), list(NAMES.values()))
    return kb


def load(vocab, data):
    return InMemoryLookupKB(vocab, 0).from_bytes(data)


def test_names_are_read_by_id_and_by_row(vocab):
    kb = build(vocab)
    assert kb.has_names
    assert kb.get_name("Q1") == "Leicester City F.C."
    assert kb.get_name("Q2") == ""  # no name
    assert kb.get_name("not in the KB") == ""
    assert kb.names_of_rows(kb.get_entity_rows(["Q4", "Q2", "Q3"])) == [
        "Italy national rugby union team", "", "Łódź"]
    assert not build(vocab, names=False).has_names


def test_set_names_renames_and_the_empty_name_removes(vocab):
    kb = build(vocab)
    kb.set_names(["Q1", "Q3"], ["Leicester City", ""])
    assert kb.get_name("Q1") == "Leicester City" and kb.get_name("Q3") == ""
    kb.add_entity("Q5", 1.0, [0.0, 1.0])  # an entity added after the names
    kb.set_names(["Q5"], ["Rome"])
    loaded = load(vocab, kb.to_bytes())
    assert [loaded.get_name(e) for e in IDS + ["Q5"]] == [
        "Leicester City", "", "", "Italy national rugby union team", "Rome"]
    kb.set_names(IDS + ["Q5"], [""] * 5)
    assert not load(vocab, kb.to_bytes()).has_names


def test_names_round_trip_bytes_disk_copy_and_pickle(vocab, tmp_path):
    kb = build(vocab)
    kb.to_disk(tmp_path / "kb")
    mapped = InMemoryLookupKB(vocab, 0).from_disk(tmp_path / "kb")
    for other in (load(vocab, kb.to_bytes()), mapped, mapped.copy(),
                  pickle.loads(pickle.dumps(mapped)), pickle.loads(pickle.dumps(kb))):
        assert [other.get_name(e) for e in IDS] == [kb.get_name(e) for e in IDS]
    assert kb_format.validate(tmp_path / "kb").format_version == kb_format.FORMAT_VERSION
    assert mapped.to_bytes() == kb.to_bytes()
    with pytest.raises(ReadOnlyKBError):
        mapped.set_names(["Q1"], ["x"])


def test_set_entities_drops_the_names(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.set_entities(IDS, [1.0] * len(IDS), [[1.0, 0.0]] * len(IDS))
    kb.set_names(["Q1"], ["Leicester City F.C."])
    kb.set_entities(["Q2", "Q1"], [1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    assert not kb.has_names and kb.get_name("Q1") == ""


@pytest.mark.parametrize("call, error", [
    (lambda kb: kb.set_names(["nowhere"], ["x"]), UnknownEntityError),
    (lambda kb: kb.set_names(["Q1"], []), LengthMismatchError),
    (lambda kb: kb.set_names(["Q1"], [7]), KBTypeError),
    (lambda kb: kb.get_name(1), TypeError),
])
def test_bad_names_raise_clear_errors_and_change_nothing(vocab, call, error):
    kb = build(vocab)
    with pytest.raises(error):
        call(kb)
    assert kb.get_name("Q1") == "Leicester City F.C."


def test_a_kb_without_names_reads_version_3_files(vocab):
    data = build(vocab, names=False).to_bytes()
    v3 = downgraded(data, 3)
    header = kb_format.validate_buffer(v3, "v3", deep=True)
    assert header.format_version == 3 and "name_offsets" not in header.sections
    loaded = load(vocab, v3)
    assert not loaded.has_names and loaded.get_name("Q1") == ""
    assert [c.entity_ for c in loaded.get_alias_candidates("Leicester")] == ["Q1", "Q2"]
    upgraded = loaded.copy()
    upgraded.set_names(["Q1"], ["Leicester City F.C."])
    assert load(vocab, upgraded.to_bytes()).get_name("Q1") == "Leicester City F.C."


# ------------------------------------------------------------------ corruption


def test_name_offsets_of_the_wrong_length_are_rejected_on_open(vocab):
    header, views = kb_format.open_views(build(vocab).to_bytes(), "test")
    arrays = dict(views)
    arrays["name_offsets"] = views["name_offsets"][:-1]
    out = io.BytesIO()
    kb_format.write(out, arrays, header.vector_length)
    with pytest.raises(KBFormatError, match="entity names are corrupt"):
        load(vocab, out.getvalue())


def test_decreasing_name_offsets_are_caught_by_validate_and_by_reads(vocab):
    data = build(vocab).to_bytes()
    offsets = section_values(data, "name_offsets")
    offsets[1] = offsets[-1] + 5
    bad = with_section(data, "name_offsets", offsets)
    with pytest.raises(KBFormatError, match="not monotonic"):
        kb_format.validate_buffer(bad, "test", deep=True)
    kb = load(vocab, bad)  # opening stays O(1): the bounds are checked where read
    with pytest.raises(KBFormatError, match="names are corrupt"):
        kb.get_name("Q1")


def test_a_name_that_is_not_utf8_is_caught_by_validate_and_by_reads(vocab):
    data = build(vocab).to_bytes()
    raw = section_values(data, "name_strings")
    raw[0] = 0xFF
    bad = with_section(data, "name_strings", raw)
    with pytest.raises(KBFormatError, match="not valid UTF-8"):
        kb_format.validate_buffer(bad, "test", deep=True)
    with pytest.raises(KBFormatError, match="not valid UTF-8"):
        load(vocab, bad).get_name("Q1")


def test_a_flipped_name_byte_fails_the_checksum(vocab):
    data = build(vocab).to_bytes()
    offset, _, _ = kb_format.read_header(data, "test").sections["name_strings"]
    bad = bytearray(data)
    bad[offset] ^= 0x01
    with pytest.raises(KBFormatError, match="checksum mismatch in section name_strings"):
        kb_format.validate_buffer(bytes(bad), "test", deep=True)

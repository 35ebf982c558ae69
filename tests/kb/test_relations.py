"""Entity relations (parents) in the KB: the API, the file (format version 3)
round trips, memory-mapped reads, version 2 files, and corrupt relations."""

import pickle

import numpy
import pytest
from kb_bytes import downgraded, section_values, with_section

from entity_linker import InMemoryLookupKB
from entity_linker.errors import (
    KBError,
    KBFormatError,
    LengthMismatchError,
    ReadOnlyKBError,
    UnknownEntityError,
)
from entity_linker.kb import format as kb_format

PLACES = ["US", "Illinois", "Missouri", "Springfield_IL", "Springfield_MO", "France", "Paris"]
EDGES = [("Illinois", "US"), ("Missouri", "US"), ("Springfield_IL", "Illinois"),
         ("Springfield_IL", "US"), ("Springfield_MO", "Missouri"), ("Springfield_MO", "US"),
         ("Paris", "France")]


def build(vocab, relations=True):
    kb = InMemoryLookupKB(vocab, 2)
    kb.set_entities(PLACES, [1.0] * len(PLACES), [[1.0, 0.0]] * len(PLACES))
    kb.add_alias("Springfield", ["Springfield_IL", "Springfield_MO"], [0.4, 0.6])
    if relations:
        kb.set_relations([c for c, _ in EDGES], [p for _, p in EDGES])
    return kb


def load(vocab, data):
    return InMemoryLookupKB(vocab, 0).from_bytes(data)


def test_parents_and_ancestors(vocab):
    kb = build(vocab)
    assert kb.has_relations
    assert sorted(kb.get_parents("Springfield_IL")) == ["Illinois", "US"]
    assert kb.get_parents("US") == []
    assert kb.get_parents("not in the KB") == []
    assert set(kb.get_ancestors("Springfield_MO")) == {"Missouri", "US"}
    assert kb.get_ancestors("Paris") == ["France"]


def test_ancestors_are_nearest_first_and_once(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    kb.set_entities(["city", "county", "state", "country"], [1.0] * 4, [[1.0]] * 4)
    kb.set_relations(["city", "county", "state", "city"], ["county", "state", "country",
                                                            "country"])
    assert kb.get_ancestors("city")[:1] in (["county"], ["country"])
    assert sorted(kb.get_ancestors("city")) == ["country", "county", "state"]
    assert kb.get_ancestors("state") == ["country"]
    offsets, rows = kb.ancestor_rows(kb.get_entity_rows(["county", "country", "city"]))
    assert offsets.tolist() == [0, 2, 2, 5]
    assert [kb.get_entity_id(int(r)) for r in rows[:2]] == ["state", "country"]


def test_a_cycle_of_relations_ends(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    kb.set_entities(["a", "b", "c"], [1.0] * 3, [[1.0]] * 3)
    kb.set_relations(["a", "b", "c"], ["b", "c", "a"])
    assert sorted(kb.get_ancestors("a")) == ["b", "c"]  # never itself, each once
    assert kb.ancestor_rows([0, 1, 2])[0].tolist() == [0, 2, 4, 6]


def test_set_parents_replaces_one_entity(vocab):
    kb = build(vocab)
    kb.set_parents("Paris", ["US"])
    assert kb.get_parents("Paris") == ["US"]
    kb.set_parents("Paris", [])
    assert kb.get_parents("Paris") == [] and kb.get_ancestors("Paris") == []
    assert sorted(kb.get_parents("Springfield_IL")) == ["Illinois", "US"]
    kb.add_entity("Texas", 1.0, [0.0, 1.0])  # an entity added after the relations
    kb.set_parents("Texas", ["US"])
    loaded = load(vocab, kb.to_bytes())
    assert loaded.get_parents("Texas") == ["US"]
    assert sorted(loaded.get_parents("Springfield_IL")) == ["Illinois", "US"]


def test_relations_round_trip_bytes_disk_copy_and_pickle(vocab, tmp_path):
    kb = build(vocab)
    kb.to_disk(tmp_path / "kb")
    mapped = InMemoryLookupKB(vocab, 0).from_disk(tmp_path / "kb")
    for other in (load(vocab, kb.to_bytes()), mapped, mapped.copy(),
                  pickle.loads(pickle.dumps(mapped)), pickle.loads(pickle.dumps(kb))):
        for entity in PLACES:
            assert sorted(other.get_parents(entity)) == sorted(kb.get_parents(entity))
            assert sorted(other.get_ancestors(entity)) == sorted(kb.get_ancestors(entity))
    assert kb_format.validate(tmp_path / "kb").format_version == kb_format.FORMAT_VERSION
    assert mapped.to_bytes() == kb.to_bytes()


def test_mapped_relations_are_views_of_the_file(vocab, tmp_path):
    build(vocab).to_disk(tmp_path / "kb")
    mapped = InMemoryLookupKB(vocab, 0).from_disk(tmp_path / "kb")
    header, views = kb_format.open_views((tmp_path / "kb" / "kb.bin").read_bytes(), "test")
    assert len(views["parent_offsets"]) == len(PLACES) + 1
    assert len(views["parent_rows"]) == len(EDGES)
    with pytest.raises(ReadOnlyKBError):
        mapped.set_parents("Paris", [])
    with pytest.raises(ReadOnlyKBError):
        mapped.set_relations([], [])


def test_kb_without_relations_writes_empty_sections_and_reads_version_2(vocab):
    data = build(vocab, relations=False).to_bytes()
    header = kb_format.read_header(data, "test")
    assert header.sections["parent_offsets"][1] == 0
    v2 = downgraded(data, 2)
    header = kb_format.validate_buffer(v2, "v2", deep=True)
    assert header.format_version == 2 and "parent_offsets" not in header.sections
    loaded = load(vocab, v2)
    assert not loaded.has_relations and loaded.get_parents("Paris") == []
    assert [c.entity_ for c in loaded.get_alias_candidates("Springfield")] == [
        "Springfield_IL", "Springfield_MO"]
    upgraded = loaded.copy()
    upgraded.set_parents("Paris", ["France"])
    assert load(vocab, upgraded.to_bytes()).get_parents("Paris") == ["France"]


@pytest.mark.parametrize("call, error", [
    (lambda kb: kb.set_parents("nowhere", ["US"]), UnknownEntityError),
    (lambda kb: kb.set_parents("Paris", ["nowhere"]), UnknownEntityError),
    (lambda kb: kb.set_parents("Paris", ["Paris"]), KBError),
    (lambda kb: kb.set_parents("Paris", [7]), KBError),
    (lambda kb: kb.set_relations(["Paris"], []), LengthMismatchError),
    (lambda kb: kb.set_relations(["Paris"], ["nowhere"]), UnknownEntityError),
    (lambda kb: kb.set_relations(["US"], ["US"]), KBError),
])
def test_bad_relations_raise_clear_errors_and_change_nothing(vocab, call, error):
    kb = build(vocab)
    with pytest.raises(error):
        call(kb)
    assert kb.get_parents("Paris") == ["France"]
    assert sorted(kb.get_parents("Springfield_IL")) == ["Illinois", "US"]


def test_set_entities_drops_the_relations(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    kb.set_entities(["a", "b"], [1.0, 1.0], [[1.0], [1.0]])
    kb.set_relations(["a"], ["b"])
    kb.set_entities(["b", "a"], [1.0, 1.0], [[1.0], [1.0]])
    assert not kb.has_relations and kb.get_parents("a") == []


# ------------------------------------------------------------------ corruption


def test_parent_offsets_of_the_wrong_length_are_rejected_on_open(vocab):
    kb = build(vocab)
    header, views = kb_format.open_views(kb.to_bytes(), "test")
    arrays = dict(views)
    arrays["parent_offsets"] = numpy.asarray(views["parent_offsets"][:-1])
    arrays["parent_rows"] = numpy.asarray(views["parent_rows"][: int(arrays["parent_offsets"][-1])])
    import io

    out = io.BytesIO()
    kb_format.write(out, arrays, header.vector_length)
    with pytest.raises(KBFormatError, match="relations"):
        load(vocab, out.getvalue())


def test_a_parent_past_the_last_entity_is_caught_by_validate_and_by_reads(vocab):
    data = build(vocab).to_bytes()
    rows = section_values(data, "parent_rows")
    rows[-1] = 10**6
    bad = with_section(data, "parent_rows", rows)
    with pytest.raises(KBFormatError, match="parent row"):
        kb_format.validate_buffer(bad, "test", deep=True)
    kb = load(vocab, bad)  # opening stays O(1): the row is checked where it is read
    with pytest.raises(KBFormatError, match="relations are corrupt"):
        kb.get_parents("Paris")
    with pytest.raises(KBFormatError, match="relations are corrupt"):
        kb.ancestor_rows(numpy.arange(len(PLACES)))


def test_decreasing_parent_offsets_are_caught_by_validate_and_by_reads(vocab):
    data = build(vocab).to_bytes()
    offsets = section_values(data, "parent_offsets")
    offsets[2] = offsets[-1] + 5
    bad = with_section(data, "parent_offsets", offsets)
    with pytest.raises(KBFormatError, match="not monotonic"):
        kb_format.validate_buffer(bad, "test", deep=True)
    kb = load(vocab, bad)
    with pytest.raises(KBFormatError, match="relations are corrupt"):
        kb.get_parents(PLACES[1])
    with pytest.raises(KBFormatError, match="relations are corrupt"):
        kb.ancestor_rows(numpy.arange(len(PLACES)))


def test_a_flipped_relation_byte_fails_the_checksum(vocab):
    data = build(vocab).to_bytes()
    offset, length, _ = kb_format.read_header(data, "test").sections["parent_rows"]
    bad = bytearray(data)
    bad[offset] ^= 0x01
    with pytest.raises(KBFormatError, match="checksum mismatch in section parent_rows"):
        kb_format.validate_buffer(bytes(bad), "test", deep=True)

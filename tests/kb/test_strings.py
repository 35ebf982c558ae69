"""The KB's string tables (strings.pyx) and slot tables (tables.pyx) on their own."""

import numpy
import pytest
from entity_linker.kb.strings import StringTable, encode_strings, take_strings
from entity_linker.kb.tables import build_slots, slot_table_length

from entity_linker.errors import EmptyStringError, KBFormatError, KBTypeError
from entity_linker.kb import hash_string

TEXTS = ["Q1", "Zürich", "東京", "a"]


def test_string_table_appends_blocks_and_decodes_each_and_all():
    table = StringTable()
    hashes, block = encode_strings(TEXTS, "entity id")
    assert hashes.tolist() == [hash_string(t) for t in TEXTS]
    table.extend(block)
    table.extend(encode_strings(["more"], "entity id")[1])
    assert table.n == 5
    assert table.decode_all() == TEXTS + ["more"]
    assert [table.decode(i) for i in range(5)] == TEXTS + ["more"]
    offsets, blob = table.arrays()
    assert len(offsets) == 6 and int(offsets[-1]) == len(blob) == table.n_bytes
    for row in (-1, 5):
        with pytest.raises(IndexError):
            table.decode(row)


def test_take_strings_keeps_the_chosen_positions_in_order():
    _, block = encode_strings(TEXTS, "alias")
    table = StringTable()
    table.extend(take_strings(block, numpy.array([3, 1])))
    assert table.decode_all() == ["a", "Zürich"]


def test_encode_strings_names_the_bad_position():
    with pytest.raises(EmptyStringError, match="position 1"):
        encode_strings(["x", ""], "alias")
    with pytest.raises(KBTypeError, match="position 0"):
        encode_strings([7], "alias")


def test_mapped_string_table_raises_kb_format_error_for_bad_offsets_or_utf8():
    bad_offsets = StringTable.from_views(numpy.array([0, 9], dtype="<u4"),
                                         numpy.frombuffer(b"abc", dtype="u1"), 1, None)
    with pytest.raises(KBFormatError):
        bad_offsets.decode(0)
    with pytest.raises(KBFormatError):
        bad_offsets.decode_all()
    bad_utf8 = StringTable.from_views(numpy.array([0, 2], dtype="<u8"),
                                      numpy.frombuffer(b"\xff\xfe", dtype="u1"), 1, None)
    with pytest.raises(KBFormatError):
        bad_utf8.decode(0)
    with pytest.raises(KBFormatError):
        bad_utf8.decode_all()


def test_build_slots_maps_every_key_once_within_its_probe_path():
    keys = numpy.array([hash_string(f"k{i}") for i in range(100)], dtype=numpy.uint64)
    slots = build_slots(keys)
    assert len(slots) == slot_table_length(100) == 256
    assert sorted(slots[slots > 0].tolist()) == list(range(1, 101))
    mask = len(slots) - 1
    for position in numpy.flatnonzero(slots):
        key = int(keys[slots[position] - 1])
        i = key & mask
        while i != position:  # no empty slot between the key's home and its slot
            assert slots[i] != 0
            i = (i + 1) & mask

"""The uint32 slot tables of KB format version 2 (tables.build_slots, structs.find_slot),
through the public API: colliding keys, corrupt slots, broken probe paths, and
mapped lookups against in-memory ones."""

import io

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kb_bytes import section_values, with_section

from entity_linker import InMemoryLookupKB
from entity_linker.errors import KBFormatError
from entity_linker.kb import format as kb_format
from entity_linker.kb import hash_string

# ------------------------------------------------------------------ helpers


def slot_length(n_rows):
    """The slot table length the writer uses (tables.build_slots)."""
    length = 8
    while length < 2 * n_rows:
        length *= 2
    return length


def colliding(prefix, count, length, home):
    """`count` strings whose hashes all have `home` as their home slot in a table of
    `length` slots (hash & (length - 1) == home)."""
    found = []
    i = 0
    while len(found) < count:
        text = f"{prefix}{i}"
        if hash_string(text) & (length - 1) == home:
            found.append(text)
        i += 1
        assert i < 200_000, "no colliding strings found"
    return found


N_COLLIDING = 16
LENGTH = slot_length(N_COLLIDING)  # 32
HOME = LENGTH - 2  # the cluster wraps around the end of the table


@pytest.fixture(scope="module")
def colliding_kb_data(nlp):
    """A KB whose entity ids all share one home slot, and whose aliases all share
    another, with some strings that also collide but are not in it."""
    entities = colliding("Q", N_COLLIDING + 4, LENGTH, HOME)
    aliases = colliding("alias ", N_COLLIDING + 4, LENGTH, HOME)
    kb = InMemoryLookupKB(nlp.vocab, 2)
    for i, entity in enumerate(entities[:N_COLLIDING]):
        kb.add_entity(entity, i + 1, [float(i), -float(i)])
    for i, alias in enumerate(aliases[:N_COLLIDING]):
        chosen = [entities[i], entities[(i + 5) % N_COLLIDING]]
        kb.add_alias(alias, chosen, [0.6, 0.3])
    return kb.to_bytes(), entities, aliases


def test_colliding_keys_fill_one_wrapping_probe_run(colliding_kb_data):
    data, entities, _ = colliding_kb_data
    header = kb_format.validate_buffer(data, "test", deep=True)
    assert header.flags == kb_format.FLAG_NARROW_STRING_OFFSETS
    assert header.entity_cells_length == header.alias_cells_length == LENGTH
    slots = section_values(data, "entity_slots")
    assert slots.dtype == numpy.uint32 and len(slots) == LENGTH
    # One run from the shared home slot, wrapping around the end of the table.
    run = [(HOME + i) % LENGTH for i in range(N_COLLIDING)]
    assert slots[run].tolist() == list(range(1, N_COLLIDING + 1))
    assert numpy.count_nonzero(slots) == N_COLLIDING


def test_colliding_keys_are_all_found_after_to_disk_and_from_disk(
        colliding_kb_data, nlp, tmp_path):
    data, entities, aliases = colliding_kb_data
    writable = InMemoryLookupKB(nlp.vocab, 2).from_bytes(data).copy()
    writable.to_disk(tmp_path)  # slot tables built again from the in-memory KB
    assert (tmp_path / "kb.bin").read_bytes() == data
    kb = InMemoryLookupKB(nlp.vocab, 2).from_disk(tmp_path)
    assert kb.is_read_only
    known, unknown = entities[:N_COLLIDING], entities[N_COLLIDING:]
    assert kb.get_entity_rows(known + unknown).tolist() == list(range(N_COLLIDING)) + [-1] * 4
    assert all(kb.contains_entity(e) for e in known)
    assert not any(kb.contains_entity(e) for e in unknown)
    for i, entity in enumerate(known):
        assert list(kb.get_vector(entity)) == [float(i), -float(i)]
    for i, alias in enumerate(aliases[:N_COLLIDING]):
        candidates = kb.get_alias_candidates(alias)
        assert [c.entity_ for c in candidates] == [known[i], known[(i + 5) % N_COLLIDING]]
        assert [c.prior_prob for c in candidates] == pytest.approx([0.6, 0.3])
    assert not any(kb.contains_alias(a) for a in aliases[N_COLLIDING:])
    offsets, rows, _ = kb.lookup_aliases(aliases)
    assert numpy.diff(offsets).tolist() == [2] * N_COLLIDING + [0] * 4
    assert rows[::2].tolist() == list(range(N_COLLIDING))


def test_colliding_aliases_are_found_through_the_alias_index(colliding_kb_data, nlp):
    data, entities, aliases = colliding_kb_data
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(data).copy()
    kb.build_alias_index()
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(kb.to_bytes())
    kb_format.validate_buffer(kb.to_bytes(), "test", deep=True)
    texts = [a.upper() for a in aliases[:N_COLLIDING]]
    offsets, entity_rows, _, alias_rows = kb.lookup_normalized(texts)
    assert numpy.diff(offsets).tolist() == [2] * N_COLLIDING
    assert alias_rows[::2].tolist() == list(range(N_COLLIDING))
    assert entity_rows[::2].tolist() == list(range(N_COLLIDING))


# ------------------------------------------------------------------ corrupt slots


@pytest.mark.parametrize("kind", ["entity", "alias"])
def test_slot_past_the_last_row_raises_on_lookup_and_in_deep_validation(
        colliding_kb_data, nlp, kind):
    data, entities, aliases = colliding_kb_data
    name = f"{kind}_slots"
    slots = section_values(data, name)
    last = (HOME + N_COLLIDING - 1) % LENGTH  # the end of the probe run
    slots[last] = N_COLLIDING + 1
    bad = with_section(data, name, slots)
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(bad)  # the quick open is O(1)
    key = (entities if kind == "entity" else aliases)[N_COLLIDING - 1]
    lookup = kb.contains_entity if kind == "entity" else kb.contains_alias
    with pytest.raises(KBFormatError, match="corrupt"):
        lookup(key)
    # Keys earlier on the probe run are still found; a later unknown key meets it.
    assert lookup((entities if kind == "entity" else aliases)[0])
    with pytest.raises(KBFormatError):
        lookup((entities if kind == "entity" else aliases)[N_COLLIDING])
    with pytest.raises(KBFormatError, match=f"the {name} table does not map every row once"):
        kb_format.validate_buffer(bad, "test", deep=True)


@pytest.mark.parametrize("value", [N_COLLIDING + 1, 2**32 - 1])
def test_slot_past_the_last_row_in_an_empty_slot_raises_for_batch_lookups(
        colliding_kb_data, nlp, value):
    data, entities, aliases = colliding_kb_data
    slots = section_values(data, "entity_slots")
    slots[(HOME + N_COLLIDING) % LENGTH] = value  # right after the run
    bad = with_section(data, "entity_slots", slots)
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(bad)
    assert kb.get_entity_rows(entities[:N_COLLIDING]).tolist() == list(range(N_COLLIDING))
    with pytest.raises(KBFormatError):
        kb.get_entity_rows(entities[N_COLLIDING:])
    with pytest.raises(KBFormatError, match="the entity_slots table does not map every row"):
        kb_format.validate_buffer(bad, "test", deep=True)


@pytest.mark.parametrize("kind", ["entity", "alias"])
def test_empty_slot_between_a_key_and_its_home_is_caught_by_deep_validation(
        colliding_kb_data, nlp, kind):
    data, entities, aliases = colliding_kb_data
    name = f"{kind}_slots"
    slots = section_values(data, name)
    last = (HOME + N_COLLIDING - 1) % LENGTH
    after = (last + 1) % LENGTH
    assert slots[after] == 0
    # Move the last key of the run one slot further: every row is still mapped
    # once, but an empty slot now lies between the key's home and the key.
    slots[after], slots[last] = slots[last], 0
    bad = with_section(data, name, slots)
    kb_format.validate_buffer(bad, "test", deep=False)
    with pytest.raises(KBFormatError, match=f"a key of the {name} table is off its probe path"):
        kb_format.validate_buffer(bad, "test", deep=True)
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(bad)
    keys = entities if kind == "entity" else aliases
    lookup = kb.contains_entity if kind == "entity" else kb.contains_alias
    assert not lookup(keys[N_COLLIDING - 1])  # unreachable: the probe stops at the hole
    assert all(lookup(k) for k in keys[: N_COLLIDING - 1])


def test_swapped_slots_in_one_run_are_still_valid(colliding_kb_data, nlp):
    """Keys of one home slot may come in any order in their run: each stays on its path."""
    data, entities, _ = colliding_kb_data
    slots = section_values(data, "entity_slots")
    a, b = HOME, (HOME + 5) % LENGTH
    slots[a], slots[b] = slots[b], slots[a]
    good = with_section(data, "entity_slots", slots)
    kb_format.validate_buffer(good, "test", deep=True)
    kb = InMemoryLookupKB(nlp.vocab, 2).from_bytes(good)
    assert kb.get_entity_rows(entities[:N_COLLIDING]).tolist() == list(range(N_COLLIDING))


# ------------------------------------------------------------------ mapped == in memory


_texts = st.text(alphabet="abcXYZ éß東😀.-", min_size=1, max_size=6)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    entities=st.lists(_texts, min_size=0, max_size=12, unique=True),
    aliases=st.lists(_texts, min_size=0, max_size=12, unique=True),
    probes=st.lists(_texts, max_size=8),
    data=st.data(),
)
def test_mapped_lookups_equal_in_memory_lookups(nlp, entities, aliases, probes, data):
    kb = InMemoryLookupKB(nlp.vocab, 1)
    for i, entity in enumerate(entities):
        kb.add_entity(entity, i, [float(i)])
    for alias in aliases:
        chosen = data.draw(st.lists(st.sampled_from(entities), max_size=3, unique=True)
                           if entities else st.just([]))
        kb.add_alias(alias, chosen, [1.0 / (len(chosen) + 1)] * len(chosen))
    kb.build_alias_index()
    wide = io.BytesIO()  # uint64 string offsets (flag 0), as a KB over 4 GiB has them
    kb_format.write(wide, kb._compact_arrays(), 1, narrow_strings=False)
    for image, flags in ((kb.to_bytes(), kb_format.FLAG_NARROW_STRING_OFFSETS),
                         (wide.getvalue(), 0)):
        assert kb_format.validate_buffer(image, "test", deep=True).flags == flags
        _check_same_lookups(kb, InMemoryLookupKB(nlp.vocab, 1).from_bytes(image), entities,
                            aliases, probes)


def _check_same_lookups(kb, mapped, entities, aliases, probes):
    entity_texts = entities + probes + aliases
    alias_texts = aliases + probes + entities + [a.upper() for a in aliases]
    assert (mapped.get_entity_rows(entity_texts).tolist()
            == kb.get_entity_rows(entity_texts).tolist())
    assert (mapped.get_entity_rows(entity_texts).tolist()[: len(entities)]
            == list(range(len(entities))))
    for expected, got in zip(kb.lookup_aliases(alias_texts), mapped.lookup_aliases(alias_texts)):
        assert numpy.asarray(expected).tolist() == numpy.asarray(got).tolist()
    for expected, got in zip(kb.lookup_normalized(alias_texts, 4, by_prior=True, discount=0.5),
                             mapped.lookup_normalized(alias_texts, 4, by_prior=True,
                                                      discount=0.5)):
        assert numpy.asarray(expected).tolist() == numpy.asarray(got).tolist()
    assert ([mapped.contains_alias(t) for t in alias_texts]
            == [kb.contains_alias(t) for t in alias_texts])


def test_changed_hash_that_stays_on_its_probe_path_passes_the_table_check(nlp):
    """A slot table stores no keys (docs/FORMAT.md, deep check 6): a changed hash
    with the same low bits still reaches its slot. For entity and alias hashes the
    string check catches it; for a normalised key nothing does, and the key is lost."""
    kb = InMemoryLookupKB(nlp.vocab, 0)
    kb.add_entity("Q1", 1, [])
    kb.add_alias("Paris", ["Q1"], [0.9])
    kb.add_alias("Rome", ["Q1"], [0.5])
    kb.build_alias_index()
    data = kb.to_bytes()
    for name in ("entity_hashes", "alias_hashes"):
        hashes = section_values(data, name)
        hashes[0] ^= numpy.uint64(1 << 40)
        with pytest.raises(KBFormatError, match="string 0 does not match its hash"):
            kb_format.validate_buffer(with_section(data, name, hashes), "test", deep=True)
    hashes = section_values(data, "norm_hashes")
    assert len(hashes) == 2
    changed = hashes.copy()
    changed[0] ^= numpy.uint64(1 << 40)
    bad = with_section(data, "norm_hashes", changed)
    kb_format.validate_buffer(bad, "test", deep=True)  # passes: the documented limit
    offsets, _, _, _ = InMemoryLookupKB(nlp.vocab, 0).from_bytes(bad).lookup_normalized(
        ["paris", "rome"])
    assert numpy.diff(offsets).tolist().count(0) == 1  # one of the two keys is lost
    changed[0] = hashes[1]  # a repeated hash is caught
    with pytest.raises(KBFormatError, match="reserved .* or repeated hash"):
        kb_format.validate_buffer(with_section(data, "norm_hashes", changed), "test", deep=True)

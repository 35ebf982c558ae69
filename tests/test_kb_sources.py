"""Tests for entity_linker.kb_sources: reading entity/alias files and writing KB folders."""

import gzip
import json
import os
import re

import numpy
import pytest

from entity_linker import InMemoryLookupKB
from entity_linker.encoders import HashingEncoder
from entity_linker.kb_sources import (
    META_FILE,
    KBSourceError,
    build_kb,
    detect_format,
    entity_texts,
    read_aliases,
    read_entities,
    read_kb_meta,
    write_kb_directory,
)

ENTITIES_CSV = """id,freq,name,description
Q90,120,Paris,capital of France
Q830149,8,Paris,city in Texas
Q60,300,New York City,
"""

ALIASES_TSV = """alias\tentity\tcount
Paris\tQ90\t90
Paris\tQ830149\t10
New York\tQ60\t7
"""


def write(path, text, encoding="utf8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


@pytest.fixture
def entities(tmp_path):
    return read_entities(write(tmp_path / "entities.csv", ENTITIES_CSV))


def error_of(func, *args, **kwargs) -> KBSourceError:
    with pytest.raises(KBSourceError) as info:
        func(*args, **kwargs)
    return info.value


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize(
    "name,fmt",
    [("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.CSV", "csv"), ("a.tsv", "tsv"),
     ("a.tab", "tsv"), ("a.csv.gz", "csv"), ("a.jsonl.gz", "jsonl")],
)
def test_detect_format_from_extension(name, fmt):
    assert detect_format(name) == fmt


def test_unknown_extension_is_an_error():
    assert "extension" in str(error_of(detect_format, "entities.txt"))


def test_read_entities_csv(entities):
    assert entities.ids == ["Q90", "Q830149", "Q60"]
    assert entities.freqs.tolist() == [120.0, 8.0, 300.0]
    assert entities.vectors is None
    assert entities.texts == ["Paris capital of France", "Paris city in Texas", "New York City"]
    assert entities.lines == [2, 3, 4]


def test_read_entities_jsonl_with_vectors_and_int_ids(tmp_path):
    path = write(tmp_path / "e.jsonl", "\n".join([
        json.dumps({"id": 2988507, "freq": 5, "vector": [1, 0]}),
        "",
        json.dumps({"id": "Q2", "vector": [0.5, 0.5]}),
    ]))
    table = read_entities(path)
    assert table.ids == ["2988507", "Q2"]
    assert table.freqs.tolist() == [5.0, 0.0]  # freq is optional
    numpy.testing.assert_array_equal(table.vectors, [[1, 0], [0.5, 0.5]])
    assert table.lines == [1, 3]


def test_read_entities_tsv_vectors_as_text(tmp_path):
    path = write(tmp_path / "e.tsv", "id\tvector\nQ1\t1 2 3\nQ2\t[4, 5, 6]\nQ3\t7,8,9\n")
    numpy.testing.assert_array_equal(read_entities(path).vectors, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])


def test_read_gzipped_files(tmp_path):
    path = tmp_path / "entities.csv.gz"
    with gzip.open(path, "wt", encoding="utf8") as file:
        file.write(ENTITIES_CSV)
    assert len(read_entities(path)) == 3


def test_utf8_bom_is_ignored(tmp_path):
    path = write(tmp_path / "e.csv", b"\xef\xbb\xbf" + ENTITIES_CSV.encode("utf8"))
    assert read_entities(path).ids[0] == "Q90"


# ------------------------------------------------------------- bad entities


@pytest.mark.parametrize(
    "content,line,match",
    [
        ('{"id": "Q1"}\n{"id": "Q2", \n', 2, "invalid JSON"),
        ('{"id": "Q1"}\n["Q2"]\n', 2, "JSON object"),
        ('{"freq": 1}\n', 1, "missing entity id"),
        ('{"id": ""}\n', 1, "empty"),
        ('{"id": "Q1", "freq": "many"}\n', 1, "freq must be a number"),
        ('{"id": "Q1", "freq": -1}\n', 1, "freq must be >= 0"),
        ('{"id": "Q1", "freq": "nan"}\n', 1, "finite"),
        ('{"id": "Q1"}\n{"id": "Q1"}\n', 2, r"duplicate entity id 'Q1' \(first .* line 1\)"),
        ('{"id": "Q1", "vector": [1, 2]}\n{"id": "Q2"}\n', 2, "has no vector"),
        ('{"id": "Q1"}\n{"id": "Q2", "vector": [1, 2]}\n', 2, "has a vector"),
        ('{"id": "Q1", "vector": [1, 2]}\n{"id": "Q2", "vector": [1]}\n', 2, "length 1"),
        ('{"id": "Q1", "vector": [1, "x"]}\n', 1, "vector item 1"),
        ('{"id": "Q1", "vector": []}\n', 1, "non-empty"),
    ],
)
def test_bad_entity_rows_name_file_and_line(tmp_path, content, line, match):
    path = write(tmp_path / "entities.jsonl", content)
    err = error_of(read_entities, path)
    assert err.path == str(path) and err.line == line
    assert str(err).startswith(f"{path}:{line}: ")
    assert re.search(match, str(err)), str(err)


def test_missing_id_column_is_a_file_error(tmp_path):
    path = write(tmp_path / "e.csv", '"Q1","Roy Emerson","tennis player"\n')
    err = error_of(read_entities, path)
    assert err.line == 1 and "missing column 'id'" in str(err) and "header" in str(err)


def test_empty_entity_file(tmp_path):
    assert "empty" in str(error_of(read_entities, write(tmp_path / "e.csv", "")))
    assert "empty" in str(error_of(read_entities, write(tmp_path / "h.csv", "id,freq\n")))


def test_wrong_encoding_names_the_line(tmp_path):
    path = write(tmp_path / "e.csv", b"id,description\nQ1,ok\nQ2,caf\xe9\n")
    err = error_of(read_entities, path)
    assert err.line == 3 and "not valid UTF-8" in str(err)


def test_utf16_file_is_rejected(tmp_path):
    path = write(tmp_path / "e.csv", ENTITIES_CSV, encoding="utf-16")
    assert "UTF-16" in str(error_of(read_entities, path))


def test_missing_file(tmp_path):
    assert "no such file" in str(error_of(read_entities, tmp_path / "nope.csv"))


def test_extra_cells_are_an_error(tmp_path):
    path = write(tmp_path / "e.csv", "id,freq\nQ1,1,2\n")
    assert error_of(read_entities, path).line == 2


def test_skip_invalid_entities_are_counted(tmp_path):
    content = '{"id": "Q1"}\n{"id": "Q2", "freq": "x"}\nnot json\n{"id": "Q1"}\n'
    path = write(tmp_path / "e.jsonl", content)
    table = read_entities(path, skip_invalid=True)
    assert table.ids == ["Q1"]
    assert [row.line for row in table.skipped] == [2, 3, 4]
    assert str(table.skipped[0]).startswith(f"{path}:2: ")


def test_skip_invalid_still_fails_without_any_valid_entity(tmp_path):
    path = write(tmp_path / "e.jsonl", "not json\n")
    assert "no valid entities" in str(error_of(read_entities, path, skip_invalid=True))


# ------------------------------------------------------------------ aliases


def test_counts_become_priors_sorted_by_prior(tmp_path, entities):
    aliases = read_aliases(write(tmp_path / "a.tsv", ALIASES_TSV), entities)
    assert aliases.texts == ["Paris", "New York"]
    assert aliases.offsets.tolist() == [0, 2, 3]
    assert aliases.entities.tolist() == [0, 1, 2]
    numpy.testing.assert_allclose(aliases.priors, [0.9, 0.1, 1.0])


def test_priors_are_kept_and_candidates_sorted(tmp_path, entities):
    path = write(tmp_path / "a.csv", "alias,entity,prior\nParis,Q830149,0.25\nParis,Q90,0.7\n")
    aliases = read_aliases(path, entities)
    assert aliases.entities.tolist() == [0, 1]
    numpy.testing.assert_allclose(aliases.priors, [0.7, 0.25])


def test_jsonl_alias_lists_and_merged_files(tmp_path, entities):
    first = write(tmp_path / "a.jsonl",
                  json.dumps({"alias": "Paris", "entities": ["Q90", "Q830149"], "counts": [3, 1]}))
    second = write(tmp_path / "b.csv", "alias,entity,count\nParis,Q90,4\nBig Apple,Q60,1\n")
    aliases = read_aliases([first, second], entities)
    assert aliases.texts == ["Paris", "Big Apple"]
    numpy.testing.assert_allclose(aliases.priors, [7 / 8, 1 / 8, 1.0])


def test_max_candidates_keeps_the_most_likely(tmp_path, entities):
    aliases = read_aliases(write(tmp_path / "a.tsv", ALIASES_TSV), entities, max_candidates=1)
    assert aliases.entities.tolist() == [0, 2]
    numpy.testing.assert_allclose(aliases.priors, [0.9, 1.0])


@pytest.mark.parametrize(
    "content,line,match",
    [
        ("alias,entity,prior\nParis,Q90,abc\n", 2, "prior must be a number"),
        ("alias,entity,prior\nParis,Q90,1.5\n", 2, r"prior must be in \[0, 1\]"),
        ("alias,entity,prior\nParis,Q999,0.5\n", 2, "unknown entity 'Q999'"),
        ("alias,entity,prior\n,Q90,0.5\n", 2, "missing alias"),
        ("alias,entity,prior,count\nParis,Q90,0.5,3\n", 2, "not both"),
        ("alias,entity,prior,count\nParis,Q90,,\n", 2, "not neither"),
        ("alias,entity,prior\nParis,Q90,0.5\nParis,Q90,0.2\n", 3, "duplicate prior"),
        ("alias,entity,prior,count\nParis,Q90,0.5,\nParis,Q830149,,3\n", 3, "one kind per alias"),
        ("alias,entity,prior\nParis,Q90,0.7\nParis,Q830149,0.6\n", 2, "add up to 1.3"),
        ("alias,entity,count\nParis,Q90,0\n", 2, "add up to 0"),
        ("alias,entity,count\nParis,Q90,-2\n", 2, "count must be >= 0"),
    ],
)
def test_bad_alias_rows_name_file_and_line(tmp_path, entities, content, line, match):
    path = write(tmp_path / "aliases.csv", content)
    err = error_of(read_aliases, path, entities)
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    assert re.search(match, str(err)), str(err)


@pytest.mark.parametrize(
    "content,match",
    [("alias,entity\nParis,Q90\n", "missing column 'prior or count'"),
     ("alias,prior\nParis,0.5\n", "missing column 'entity'"),
     ("", "empty"),
     ("alias,entity,prior\n", "empty")],
)
def test_bad_alias_files(tmp_path, entities, content, match):
    assert match in str(error_of(read_aliases, write(tmp_path / "a.csv", content), entities))


def test_jsonl_alias_list_errors(tmp_path, entities):
    row = {"alias": "P", "entities": ["Q90"], "priors": [0.5, 0.5]}
    path = write(tmp_path / "a.jsonl", json.dumps(row))
    assert "one number per entity" in str(error_of(read_aliases, path, entities))


def test_skip_invalid_aliases(tmp_path, entities):
    path = write(tmp_path / "a.csv",
                 "alias,entity,prior\nParis,Q90,0.6\nParis,Q999,0.2\nBad,Q60,x\nOver,Q60,0.9\n"
                 "Over,Q90,0.9\n")
    aliases = read_aliases(path, entities, skip_invalid=True)
    assert aliases.texts == ["Paris"]
    assert sorted(row.line for row in aliases.skipped) == [3, 4, 5]


# ------------------------------------------------------------------ building


def test_build_kb_with_the_default_encoder(tmp_path, entities, vocab):
    aliases = read_aliases(write(tmp_path / "a.tsv", ALIASES_TSV), entities)
    kb = build_kb(vocab, entities, aliases)
    assert kb.entity_vector_length == 64
    candidates = {c.entity_: c.prior_prob for c in kb.get_alias_candidates("Paris")}
    assert candidates == pytest.approx({"Q90": 0.9, "Q830149": 0.1})
    assert kb.get_entity_rows(["Q60"]).tolist() == [2]
    expected = HashingEncoder(64)(["New York City"])[0]
    numpy.testing.assert_allclose(kb.get_vector("Q60"), expected, atol=1e-6)
    assert [kb.get_name(e) for e in ("Q90", "Q830149", "Q60")] == [
        "Paris", "Paris", "New York City"]


def test_build_kb_with_given_vectors(tmp_path, vocab):
    entities = read_entities(write(tmp_path / "e.jsonl", '{"id": "A", "vector": [1, 0]}\n'))
    aliases = read_aliases(write(tmp_path / "a.csv", "alias,entity,prior\na,A,1\n"), entities)
    kb = build_kb(vocab, entities, aliases)
    assert kb.get_vector("A") == [1.0, 0.0]
    assert not kb.has_names  # no name column
    with pytest.raises(KBSourceError, match="no encoder is used"):
        build_kb(vocab, entities, aliases, encoder=HashingEncoder(2))


def test_entity_texts_fall_back_to_aliases_then_id(tmp_path):
    entities = read_entities(write(tmp_path / "e.csv", "id\nQ1\nQ2\n"))
    aliases = read_aliases(write(tmp_path / "a.csv", "alias,entity,count\nBig Apple,Q1,1\n"),
                           entities)
    assert entity_texts(entities, aliases) == ["Big Apple", "Q2"]


# -------------------------------------------------------- writing KB folders


def one_entity_kb(vocab, entity, alias, vector):
    return InMemoryLookupKB.from_arrays(
        vocab, [entity], [1.0], [vector], [alias], [0, 1], [0], [1.0]
    )


@pytest.fixture
def tiny_kb(vocab):
    return one_entity_kb(vocab, "A", "a", [1.0, 0.0])


def test_write_kb_directory_new_folder(tmp_path, tiny_kb, vocab):
    out = write_kb_directory(tiny_kb, tmp_path / "deep" / "kb", {"kind": "custom"},
                             {"extra.txt": lambda p: p.write_text("hi")})
    assert sorted(os.listdir(out)) == ["extra.txt", "kb.bin", META_FILE]
    meta = read_kb_meta(out)
    assert meta["kind"] == "custom" and meta["files"] == ["kb.bin", "extra.txt"]
    assert meta["kb_file_size"] == (out / "kb.bin").stat().st_size
    assert InMemoryLookupKB(vocab, 2).from_disk(out).contains_alias("a")
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_write_kb_directory_replaces_an_existing_kb(tmp_path, tiny_kb, vocab):
    out = tmp_path / "kb"
    write_kb_directory(tiny_kb, out, {"version": 1})
    other = one_entity_kb(vocab, "B", "b", [0.0, 1.0])
    write_kb_directory(other, out, {"version": 2})
    assert read_kb_meta(out)["version"] == 2
    assert InMemoryLookupKB(vocab, 2).from_disk(out).contains_alias("b")
    assert sorted(os.listdir(out)) == ["kb.bin", META_FILE]


@pytest.mark.parametrize("exists", [False, True])
def test_failed_write_leaves_no_partial_kb(tmp_path, tiny_kb, exists):
    out = tmp_path / "kb"
    if exists:
        out.mkdir()

    def explode(path):
        raise KeyboardInterrupt  # e.g. Ctrl-C while a sidecar is written

    with pytest.raises(KeyboardInterrupt):
        write_kb_directory(tiny_kb, out, {}, {"sidecar.npz": explode})
    assert os.listdir(tmp_path) == (["kb"] if exists else [])
    if exists:
        assert os.listdir(out) == []


def test_read_kb_meta_without_meta_is_empty(tmp_path):
    assert read_kb_meta(tmp_path) == {}

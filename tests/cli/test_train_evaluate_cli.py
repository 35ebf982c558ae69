"""Tests for `entity-linker train | init-config | evaluate` (typer's CliRunner).

The corpus is a small synthetic task (entity_linker.synthetic): train.spacy,
dev.spacy and the KB folder. One pipeline is trained per module (a few
steps) and shared by the evaluate tests.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import spacy
from spacy import util
from spacy.language import Language
from spacy.tokens import DocBin
from typer.testing import CliRunner

from entity_linker import geonames as geonames_module
from entity_linker.cli import app
from entity_linker.cli.link import GEONAMES_LOADER
from entity_linker.evaluation import evaluate_end_to_end, evaluate_linking
from entity_linker.synthetic import make_task

TEMPLATE = Path(__file__).parents[2] / "entity_linker" / "data" / "nel_config.cfg"
# Tiny training runs: a few steps, evaluated twice.
SHORT = ["--training.max_steps", "20", "--training.eval_frequency", "10"]

runner = CliRunner()


class Result:
    """A CliRunner result whose output has no colours and no line wrapping."""

    def __init__(self, result):
        self.exit_code = result.exit_code
        self.exception = result.exception
        self.output = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", result.output).split())


def invoke(*args, **kwargs):
    return Result(runner.invoke(app, [str(a) for a in args], **kwargs))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """train.spacy, dev.spacy (gold docs with kb ids) and the KB folder."""
    path = tmp_path_factory.mktemp("corpus")
    nlp = spacy.blank("en")
    kb, train, dev = make_task(nlp, seed=5, n_train=120, n_test=40, n_aliases=20,
                               vector_length=16)
    DocBin(docs=[eg.reference for eg in train]).to_disk(path / "train.spacy")
    DocBin(docs=[eg.reference for eg in dev]).to_disk(path / "dev.spacy")
    kb.to_disk(path / "kb")
    return SimpleNamespace(path=path, train=path / "train.spacy", dev=path / "dev.spacy",
                           kb=path / "kb", n_entities=kb.get_size_entities(),
                           entity_ids=set(kb.get_entity_strings()))


def _paths(corpus):
    return ["--paths.train", corpus.train, "--paths.dev", corpus.dev, "--paths.kb", corpus.kb]


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """`entity-linker train` with the shipped template: the output folder."""
    output = tmp_path_factory.mktemp("trained") / "output"
    result = invoke("train", TEMPLATE, "--output", output, *_paths(corpus), *SHORT)
    assert result.exit_code == 0, result.output
    return output


@pytest.fixture(scope="module")
def model_best(trained):
    return trained / "model-best"


def _dev_docs(nlp, corpus):
    return list(DocBin().from_disk(corpus.dev).get_docs(nlp.vocab))


def _same_scores(reported, expected):
    # Speeds differ from run to run; every score must agree.
    expected = {k: v for k, v in expected.items() if k != "docs_per_second"}
    assert set(expected) <= set(reported)
    for key, value in expected.items():
        _same_value(reported[key], value, key)


def _same_value(reported, expected, where):
    if isinstance(expected, dict):
        assert set(reported) == set(expected), where
        for key in expected:
            _same_value(reported[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(reported) == len(expected), where
        for i, (a, b) in enumerate(zip(reported, expected)):
            _same_value(a, b, f"{where}[{i}]")
    elif expected is None:
        assert reported is None, where
    else:
        assert reported == pytest.approx(expected), where


# ---------------------------------------------------------------------- help


@pytest.mark.parametrize("command,expected", [
    ("train", ["--output", "--init-config", "--code", "--gpu-id", "--paths.kb"]),
    ("init-config", ["--force", "sentencizer", "nel"]),
    ("evaluate", ["--gold-mentions", "--end-to-end", "--geo", "--json", "PIPELINE", "CORPUS"]),
])
def test_help(command, expected):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.output


def test_the_commands_are_listed():
    result = invoke("--help")
    for command in ("train", "init-config", "evaluate"):
        assert command in result.output


# ------------------------------------------------------------ config template


def test_init_config_writes_the_template_and_does_not_overwrite(tmp_path):
    target = tmp_path / "configs" / "my.cfg"
    result = invoke("init-config", target)
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf8") == TEMPLATE.read_text(encoding="utf8")
    target.write_text("mine", encoding="utf8")
    result = invoke("init-config", target)
    assert result.exit_code == 1
    assert "--force" in result.output
    assert target.read_text(encoding="utf8") == "mine"
    assert invoke("init-config", target, "--force").exit_code == 0
    assert target.read_text(encoding="utf8") == TEMPLATE.read_text(encoding="utf8")


def test_train_init_config_writes_the_template_into_a_folder(tmp_path):
    result = invoke("train", "--init-config", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "nel_config.cfg").read_bytes() == TEMPLATE.read_bytes()
    # Writing a template and training at once is a mistake.
    result = invoke("train", TEMPLATE, "--init-config", tmp_path / "x.cfg")
    assert result.exit_code == 2
    assert not (tmp_path / "x.cfg").exists()


def test_template_is_complete_and_names_every_nel_setting(corpus):
    config = util.load_config(TEMPLATE, interpolate=False)
    assert config["nlp"]["pipeline"] == ["sentencizer", "nel"]
    nel = config["components"]["nel"]
    assert nel["factory"] == "nel"
    assert nel["model"]["@architectures"] == "entity_linker.EntityLinker.v2"
    defaults = Language.get_factory_meta("nel").default_config
    assert set(defaults) <= set(nel)
    assert config["initialize"]["components"]["nel"]["kb_loader"] == {
        "@misc": "entity_linker.KBFromFile.v1", "kb_path": "${paths.kb}", "verify": False}
    for name in ("train", "dev"):
        assert config["corpora"][name]["@readers"] == "spacy.Corpus.v1"
        assert config["paths"][name] is None
    # Complete: spaCy's auto-fill adds nothing.
    filled = util.load_model_from_config(
        util.load_config(TEMPLATE, interpolate=False,
                         overrides={"paths.kb": str(corpus.kb)}),
        auto_fill=True,
    ).config
    for section in ("nlp", "components"):
        assert filled[section] == config[section]
    # Our settings are explained in comments next to them.
    text = TEMPLATE.read_text(encoding="utf8")
    for setting in ("top_k", "candidate_loss_weight", "scoring"):
        block = text.split(f"\n{setting} = ")[0].rsplit("\n\n", 1)[-1]
        assert block.splitlines()[-1].startswith("#"), setting


# --------------------------------------------------------------------- train


def test_train_saves_a_pipeline_that_loads_and_links(trained, corpus):
    best = trained / "model-best"
    assert (trained / "model-last").is_dir()
    assert (best / "nel" / "kb" / "kb.bin").is_file()
    meta = json.loads((best / "meta.json").read_text())
    assert meta["performance"]["nel_micro_f"] is not None
    nlp = spacy.load(best)
    assert nlp.pipe_names == ["sentencizer", "nel"]
    assert nlp.get_pipe("nel").kb.get_size_entities() == corpus.n_entities
    # The overrides reached the config, as with `spacy train`.
    config = util.load_config(best / "config.cfg", interpolate=False)
    assert config["training"]["max_steps"] == 20
    assert config["paths"]["kb"] == str(corpus.kb)
    # The template with the overrides is what was trained: nothing was filled in.
    expected = util.load_config(TEMPLATE, interpolate=False, overrides={
        "paths.train": str(corpus.train), "paths.dev": str(corpus.dev),
        "paths.kb": str(corpus.kb), "training.max_steps": 20, "training.eval_frequency": 10,
    })
    assert config == expected
    docs = _dev_docs(nlp, corpus)
    for doc in docs:
        doc.ents = [doc.char_span(e.start_char, e.end_char, label=e.label_) for e in doc.ents]
    linked = [ent.kb_id_ for doc in nlp.pipe(docs) for ent in doc.ents]
    assert len(linked) == 40
    assert set(linked) <= corpus.entity_ids


def test_train_without_the_paths_names_the_missing_overrides(corpus, tmp_path):
    result = invoke("train", TEMPLATE, "--output", tmp_path / "out",
                    "--paths.train", corpus.train)
    assert result.exit_code == 1
    assert "--paths.dev" in result.output and "--paths.kb" in result.output
    assert not (tmp_path / "out" / "model-best").exists()


@pytest.mark.parametrize("args,message", [
    ([], "give the training config"),
    (["--paths.train", "x.spacy"], "give the training config first"),
    ([TEMPLATE, "--bogus", "1"], "--section.key"),
])
def test_train_usage_errors(args, message):
    result = invoke("train", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_train_with_a_missing_kb_fails_without_a_traceback(corpus, tmp_path):
    result = invoke("train", TEMPLATE, "--paths.train", corpus.train, "--paths.dev",
                    corpus.dev, "--paths.kb", tmp_path / "no_kb")
    assert result.exit_code == 1
    assert "no_kb" in result.output and "does not exist" in result.output


def test_train_with_a_missing_config_fails(tmp_path):
    result = invoke("train", tmp_path / "nope.cfg")
    assert result.exit_code == 1
    assert "Config file not found" in result.output


def test_spacy_train_works_with_the_shipped_template(corpus, tmp_path):
    output = tmp_path / "output"
    command = [sys.executable, "-m", "spacy", "train", str(TEMPLATE), "--output", str(output),
               *[str(a) for a in _paths(corpus)], *SHORT]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    nlp = spacy.load(output / "model-best")
    assert nlp.pipe_names == ["sentencizer", "nel"]
    assert nlp.get_pipe("nel").kb.get_size_entities() == corpus.n_entities


# ------------------------------------------------------------------ evaluate


def test_evaluate_on_a_docbin_matches_evaluate_linking(model_best, corpus, tmp_path):
    out = tmp_path / "scores.json"
    result = invoke("evaluate", model_best, corpus.dev, "--json", out)
    assert result.exit_code == 0, result.output
    for row in ("Accuracy", "Micro P", "Micro R", "Micro F", "Prior-only accuracy", "Oracle"):
        assert row in result.output
    assert "End to end" not in result.output
    assert "161 km" not in result.output
    scores = json.loads(out.read_text())
    assert scores["docs"] == 40
    assert scores["component"] == "nel"
    assert "end_to_end" not in scores
    nlp = spacy.load(model_best)
    expected = evaluate_linking(nlp, _dev_docs(nlp, corpus))
    _same_scores(scores["linking"], expected)
    assert scores["linking"]["mentions"] == 40
    assert scores["linking"]["oracle"] == 1.0  # every gold entity is a candidate
    # The table prints the same numbers, as percentages.
    assert f"Accuracy {100 * expected['accuracy']:.2f}" in result.output


def _write_jsonl(path, docs, blank_line_after=None, key="ents"):
    """The docs as `entity-linker link --format jsonl` writes them (extra fields too).

    key: "ents" (what link and link-corpus write), or "spans" (older link output).
    """
    lines = []
    for i, doc in enumerate(docs):
        spans = [{"start": e.start_char, "end": e.end_char, "text": e.text, "label": e.label_,
                  "kb_id": e.kb_id_ or "NIL", "score": 0.5,
                  "candidates": [{"kb_id": e.kb_id_, "score": 0.5}]} for e in doc.ents]
        lines.append(json.dumps({"text": doc.text, key: spans}))
        if i == blank_line_after:
            lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf8")


def test_evaluate_on_jsonl_matches_the_docbin(model_best, corpus, tmp_path):
    nlp = spacy.load(model_best)
    docs = _dev_docs(nlp, corpus)
    jsonl = tmp_path / "dev.jsonl"
    _write_jsonl(jsonl, docs, blank_line_after=3)
    result = invoke("evaluate", model_best, jsonl, "--json", tmp_path / "jsonl.json")
    assert result.exit_code == 0, result.output
    from_jsonl = json.loads((tmp_path / "jsonl.json").read_text())["linking"]
    _same_scores(from_jsonl, evaluate_linking(nlp, docs))
    # The same JSONL from stdin.
    result = invoke("evaluate", model_best, "-", "--json", tmp_path / "stdin.json",
                    input=jsonl.read_text(encoding="utf8"))
    assert result.exit_code == 0, result.output
    _same_scores(json.loads((tmp_path / "stdin.json").read_text())["linking"], from_jsonl)
    # Older link output named the list "spans": still read.
    _write_jsonl(jsonl, docs, key="spans")
    result = invoke("evaluate", model_best, jsonl, "--json", tmp_path / "spans.json")
    assert result.exit_code == 0, result.output
    _same_scores(json.loads((tmp_path / "spans.json").read_text())["linking"], from_jsonl)


def test_evaluate_end_to_end_with_an_entity_ruler(model_best, corpus, tmp_path):
    nlp = spacy.load(model_best)
    ruler = nlp.add_pipe("entity_ruler", before="nel")
    ruler.add_patterns([{"label": "ENT", "pattern": f"Name{a}"} for a in range(20)])
    nlp.to_disk(tmp_path / "with_ruler")
    out = tmp_path / "scores.json"
    result = invoke("evaluate", tmp_path / "with_ruler", corpus.dev, "--end-to-end",
                    "--json", out)
    assert result.exit_code == 0, result.output
    assert "End to end" in result.output and "Span F" in result.output
    assert "sets doc.ents" not in result.output  # no warning: the ruler finds the mentions
    scores = json.loads(out.read_text())
    nlp = spacy.load(tmp_path / "with_ruler")
    docs = _dev_docs(nlp, corpus)
    _same_scores(scores["end_to_end"], evaluate_end_to_end(nlp, docs))
    _same_scores(scores["linking"], evaluate_linking(nlp, docs))
    # The ruler finds exactly the gold mentions, so linking decides the link scores.
    assert scores["end_to_end"]["span_f"] == 1.0
    assert scores["end_to_end"]["link_f"] == pytest.approx(scores["linking"]["accuracy"])


def test_evaluate_end_to_end_without_a_mention_finder_warns(model_best, corpus):
    result = invoke("evaluate", model_best, corpus.dev, "--end-to-end")
    assert result.exit_code == 0, result.output
    assert "No component before the linker sets doc.ents" in result.output


class FakeMetadata:
    """GeoNames-like metadata: entity E<i> on a grid whose points are > 2,000 km apart."""

    def __init__(self):
        self.calls = []

    def get(self, entity_id, default=None):
        if not entity_id.startswith("E"):
            return default
        i = int(entity_id[1:])
        return SimpleNamespace(latitude=(i % 6) * 20.0 - 50.0,
                               longitude=(i // 6) * 30.0 - 150.0)


@pytest.fixture
def fake_metadata(monkeypatch):
    metadata = FakeMetadata()

    def load(path=None, *, vector_length=64):
        metadata.calls.append((path, vector_length))
        return metadata

    monkeypatch.setattr(geonames_module, "load_geonames_metadata", load)
    return metadata


def test_evaluate_geo_scores_with_metadata(model_best, corpus, tmp_path, fake_metadata):
    out = tmp_path / "scores.json"
    result = invoke("evaluate", model_best, corpus.dev, "--geo", "--json", out)
    assert result.exit_code == 0, result.output
    assert "Accuracy@161 km" in result.output and "Median error (km)" in result.output
    assert len(fake_metadata.calls) == 1
    linking = json.loads(out.read_text())["linking"]
    nlp = spacy.load(model_best)
    _same_scores(linking, evaluate_linking(nlp, _dev_docs(nlp, corpus), fake_metadata))
    # Distinct entities are far apart: within 161 km means the right entity.
    assert linking["accuracy_161km"] == pytest.approx(linking["accuracy"])


def test_evaluate_geo_is_automatic_for_geonames_pipelines(model_best, corpus, tmp_path,
                                                           fake_metadata):
    # A pipeline that names the GeoNames loader (its KB is still saved with it).
    pipeline = tmp_path / "geo_pipeline"
    shutil.copytree(model_best, pipeline)
    cfg_path = pipeline / "nel" / "cfg"
    cfg = json.loads(cfg_path.read_text())
    cfg["kb_loader"] = {"@misc": GEONAMES_LOADER, "vector_length": 16}
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "scores.json"
    result = invoke("evaluate", pipeline, corpus.dev, "--json", out)
    assert result.exit_code == 0, result.output
    assert fake_metadata.calls == [(None, 16)]
    assert "accuracy_161km" in json.loads(out.read_text())["linking"]
    result = invoke("evaluate", pipeline, corpus.dev, "--no-geo", "--json", out)
    assert result.exit_code == 0, result.output
    assert "accuracy_161km" not in json.loads(out.read_text())["linking"]
    assert len(fake_metadata.calls) == 1


def test_evaluate_geo_warns_when_no_gold_id_has_coordinates(model_best, corpus, monkeypatch):
    monkeypatch.setattr(geonames_module, "load_geonames_metadata",
                        lambda path=None, *, vector_length=64: {})
    result = invoke("evaluate", model_best, corpus.dev, "--geo")
    assert result.exit_code == 0, result.output
    assert "No gold kb id is a GeoNames id" in result.output
    assert "Median error (km) n/a" in result.output


GOOD = {"text": "Name1 is here", "ents": [{"start": 0, "end": 5, "label": "ENT",
                                            "kb_id": "E3"}]}


@pytest.mark.parametrize("bad_line,message", [
    ('{"text": "Name1 is here", "ents": [', "not valid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"ents": []}', "'text'"),
    ('{"text": 3, "ents": []}', "'text'"),
    ('{"text": "Name1"}', "'ents'"),
    ('{"text": "Name1", "ents": [{"start": 0, "end": 9, "kb_id": "E3"}]}', "out of range"),
    ('{"text": "Name1", "ents": [{"start": -1, "end": 3, "kb_id": "E3"}]}', "out of range"),
    ('{"text": "Name1", "ents": [{"start": 3, "end": 3, "kb_id": "E3"}]}', "out of range"),
    ('{"text": "Name1", "ents": [{"start": "0", "end": 5, "kb_id": "E3"}]}', "integers"),
    ('{"text": "Name1", "ents": [{"start": 0, "end": 5, "kb_id": 3}]}', "'kb_id'"),
    ('{"text": "Name1", "ents": [{"start": 0, "end": 5, "text": "Name2"}]}', "is not the text"),
    ('{"text": "Name1 Name2", "ents": [{"start": 0, "end": 7}, {"start": 6, "end": 11}]}',
     "overlap"),
    ('{"text": "a  b", "ents": [{"start": 1, "end": 3}]}', "only whitespace"),
])
def test_evaluate_malformed_jsonl_names_file_and_line(model_best, tmp_path, monkeypatch,
                                                      bad_line, message):
    monkeypatch.chdir(tmp_path)  # a short relative path in the message
    Path("bad.jsonl").write_text(json.dumps(GOOD) + "\n\n" + bad_line + "\n", encoding="utf8")
    result = invoke("evaluate", model_best, "bad.jsonl")
    assert result.exit_code == 1, result.output
    assert "bad.jsonl:3:" in result.output
    assert message in result.output


@pytest.mark.parametrize("name,content,message", [
    ("bad.spacy", b"not a docbin", "not a readable .spacy file"),
    ("corpus.txt", b"Name1 is here", "expected a .spacy file"),
])
def test_evaluate_unreadable_corpus_fails(model_best, tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    result = invoke("evaluate", model_best, tmp_path / name)
    assert result.exit_code == 1
    assert name in result.output and message in result.output


def test_evaluate_missing_corpus_or_pipeline_fails(model_best, corpus, tmp_path):
    result = invoke("evaluate", model_best, tmp_path / "nope.spacy")
    assert result.exit_code == 1
    assert "No such file" in result.output
    result = invoke("evaluate", tmp_path / "no_pipeline", corpus.dev)
    assert result.exit_code == 1
    assert "Could not load the pipeline" in result.output
    spacy.blank("en").to_disk(tmp_path / "blank")
    result = invoke("evaluate", tmp_path / "blank", corpus.dev)
    assert result.exit_code == 1
    assert "no nel component" in result.output


def test_evaluate_a_folder_of_docbins(model_best, corpus, tmp_path):
    folder = tmp_path / "dev"
    folder.mkdir()
    nlp = spacy.load(model_best)
    docs = _dev_docs(nlp, corpus)
    DocBin(docs=docs[:25]).to_disk(folder / "a.spacy")
    DocBin(docs=docs[25:]).to_disk(folder / "b.spacy")
    out = tmp_path / "scores.json"
    result = invoke("evaluate", model_best, folder, "--json", out)
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["docs"] == 40
    _same_scores(scores["linking"], evaluate_linking(nlp, docs))

"""entity_linker.corpora: gold corpora read without the command line."""

import io
import json

import pytest
import spacy
from spacy.tokens import DocBin

from entity_linker import corpora, errors
from entity_linker.corpora import (
    decode_line,
    read_corpus,
    read_docbin,
    read_jsonl,
    record_to_doc,
    text_problem,
)
from entity_linker.errors import CorpusError

RECORD = {"text": "Paris is in Texas.", "ents": [
    {"start": 0, "end": 5, "label": "GPE", "kb_id": "Q90", "text": "Paris"},
    {"start": 12, "end": 17, "label": "GPE", "kb_id": None},
]}


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def _gold(docs):
    return [[(e.text, e.label_, e.kb_id_) for e in doc.ents] for doc in docs]


def test_there_is_one_corpus_error_and_it_is_a_value_error():
    assert corpora.CorpusError is errors.CorpusError
    assert issubclass(CorpusError, ValueError)


def test_a_record_becomes_a_doc_with_gold_entities(nlp):
    doc = record_to_doc(nlp, RECORD, "here")
    assert doc.vocab is nlp.vocab
    assert _gold([doc]) == [[("Paris", "GPE", "Q90"), ("Texas", "GPE", "NIL")]]
    older = record_to_doc(nlp, {"text": "Paris", "spans": [{"start": 0, "end": 5}]}, "x")
    assert _gold([older]) == [[("Paris", "ENT", "NIL")]]
    # Offsets inside a token expand to the whole token.
    assert record_to_doc(nlp, {"text": "Parisian", "ents": [{"start": 0, "end": 5}]},
                         "x").ents[0].text == "Parisian"


@pytest.mark.parametrize("record,message", [
    (["a list"], "expected a JSON object, got list"),
    ({"ents": []}, "'text' field with a string"),
    ({"text": "a \ud800", "ents": []}, "lone surrogate"),
    ({"text": "Paris"}, "expected an 'ents' field"),
    ({"text": "Paris", "ents": ["x"]}, "span 0: expected a JSON object"),
    ({"text": "Paris", "ents": [{"start": True, "end": 5}]}, "must be integers"),
    ({"text": "Paris", "ents": [{"start": 0, "end": 6}]}, "out of range"),
    ({"text": "a  b", "ents": [{"start": 1, "end": 3}]}, "only whitespace"),
    ({"text": "Paris", "ents": [{"start": 0, "end": 5, "text": "Texas"}]}, "is not the text"),
    ({"text": "Paris", "ents": [{"start": 0, "end": 5, "label": ""}]}, "'label'"),
    ({"text": "Paris", "ents": [{"start": 0, "end": 5, "kb_id": 7}]}, "'kb_id'"),
    ({"text": "Paris Texas", "ents": [{"start": 0, "end": 7}, {"start": 6, "end": 11}]},
     "overlap"),
])
def test_bad_records_raise_corpus_errors_naming_where(nlp, record, message):
    with pytest.raises(CorpusError, match=message) as info:
        record_to_doc(nlp, record, "gold.jsonl:4")
    assert str(info.value).startswith("gold.jsonl:4")


def test_read_jsonl_skips_blank_lines_but_counts_them(nlp):
    lines = [json.dumps(RECORD).encode() + b"\n", b"\n", b"  \r\n", b'{"text": 1}\n']
    with pytest.raises(CorpusError, match=r"^corpus:4: expected a 'text'"):
        read_jsonl(nlp, io.BytesIO(b"".join(lines)), "corpus")
    docs = read_jsonl(nlp, io.BytesIO(b"".join(lines[:3])), "corpus")
    assert _gold(docs) == [[("Paris", "GPE", "Q90"), ("Texas", "GPE", "NIL")]]
    # Text lines are read too.
    assert len(read_jsonl(nlp, io.StringIO(json.dumps(RECORD) + "\n"), "text")) == 1


@pytest.mark.parametrize("content,message", [
    (b"{not json\n", r"^c:1: not valid JSON"),
    (b'{"text": "caf\xe9", "ents": []}\n', r"^c:1: not valid UTF-8 \(byte 0xe9"),
])
def test_read_jsonl_names_the_line_of_bad_input(nlp, content, message):
    with pytest.raises(CorpusError, match=message):
        read_jsonl(nlp, io.BytesIO(content), "c")


def test_read_corpus_reads_jsonl_docbins_and_folders_of_them(nlp, tmp_path):
    jsonl = tmp_path / "gold.jsonl"
    jsonl.write_text(json.dumps(RECORD) + "\n", encoding="utf8")
    from_jsonl = read_corpus(nlp, jsonl)
    assert _gold(from_jsonl) == _gold([record_to_doc(nlp, RECORD, "x")])
    assert _gold(read_corpus(nlp, str(jsonl))) == _gold(from_jsonl)
    folder = tmp_path / "docbins"
    (folder / "b").mkdir(parents=True)
    DocBin(docs=from_jsonl).to_disk(folder / "a.spacy")
    DocBin(docs=from_jsonl * 2).to_disk(folder / "b" / "c.spacy")
    assert _gold(read_docbin(nlp, folder / "a.spacy")) == _gold(from_jsonl)
    assert _gold(read_corpus(nlp, folder / "a.spacy")) == _gold(from_jsonl)
    assert _gold(read_corpus(nlp, folder)) == _gold(from_jsonl) * 3


def test_read_corpus_reads_stdin_for_a_dash(nlp, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        json.dumps(RECORD).encode() + b"\n")))
    assert len(read_corpus(nlp, "-")) == 1


def test_read_corpus_refuses_what_it_cannot_read(nlp, tmp_path):
    with pytest.raises(CorpusError, match="No such file or folder"):
        read_corpus(nlp, tmp_path / "missing.jsonl")
    with pytest.raises(CorpusError, match="no .spacy files in this folder"):
        read_corpus(nlp, tmp_path)
    (tmp_path / "gold.txt").write_text("Paris\n")
    with pytest.raises(CorpusError, match="expected a .spacy file"):
        read_corpus(nlp, tmp_path / "gold.txt")
    (tmp_path / "broken.spacy").write_bytes(b"not a docbin")
    with pytest.raises(CorpusError, match="not a readable .spacy file"):
        read_corpus(nlp, tmp_path / "broken.spacy")


def test_text_problem_and_decode_line():
    assert text_problem("Paris") is None
    assert "byte 0xff" in text_problem("Paris \udcff")
    assert "lone surrogate" in text_problem("a \ud800")
    assert decode_line(b"Paris\r\n") == ("Paris", None)
    assert decode_line("Paris\n") == ("Paris", None)
    line, problem = decode_line(b"Paris \xff\n")
    assert line == "Paris \ufffd" and "not valid UTF-8 (byte 0xff at column 7)" in problem
    assert decode_line("caf\udce9\n")[1].startswith("the line is not valid UTF-8")

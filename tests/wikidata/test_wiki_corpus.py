"""``entity-linker wiki corpus``: Wikipedia paragraphs with their links as gold mentions."""

import json

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from entity_linker.cli import app
from entity_linker.wikidata import DumpError, WikiKBConfig, build_wikidata_kb
from entity_linker.wikidata.corpus import (
    ShardWriter,
    article_paragraphs,
    set_language,
    tokenize,
    tokens_doc,
    write_wiki_corpus,
)

runner = CliRunner()

# (text, [(mention, QID)]) of every doc, in dump order.
EXPECTED = [
    ("Paris is the capital of France. It is called the city of light.",
     [("France", "Q142"), ("city of light", "Q90")]),
    ("In myth, Paris took Helen. See the Eiffel Tower.",
     [("Paris", "Q167646"), ("Eiffel Tower", "Q243")]),
    ("The name Paris is old.", [("Paris", "Q90")]),
    ("Paris is the capital of France. The capital is large & old. paris again.",
     [("Paris", "Q90"), ("The capital", "Q90"), ("paris", "Q90")]),
    # Mercury (a disambiguation page) and Nowhere (no article) stay plain text
    ("Paris is a myth. Mercury is a planet. Hello World and Nowhere.",
     [("Paris", "Q167646"), ("Hello World", "Q4")]),
    ("The tower is in Paris, France.", [("Paris", "Q90"), ("France", "Q142")]),
]


@pytest.fixture
def kb_and_dump(tmp_path, dumps):
    wikidata = dumps.write_wikidata(tmp_path / "wd.json.gz")
    wikipedia = dumps.write_wikipedia(tmp_path / "pages.xml.bz2")
    build_wikidata_kb(WikiKBConfig(wikidata=wikidata, wikipedia=wikipedia,
                                   output=tmp_path / "kb", workers=1, progress=False))
    return tmp_path / "kb", wikipedia


def read_docs(folder):
    nlp = spacy.blank("en")
    docs = []
    for path in sorted(folder.glob("train-*.spacy")):
        docs.extend(DocBin().from_disk(path).get_docs(nlp.vocab))
    return docs


def as_records(docs):
    return [(doc.text, [(e.text, e.kb_id_) for e in doc.ents]) for doc in docs]


@pytest.mark.parametrize("workers", [1, 2])
def test_corpus_docs_and_offsets(tmp_path, kb_and_dump, workers):
    kb, wikipedia = kb_and_dump
    stats = write_wiki_corpus(wikipedia, kb, tmp_path / "corpus", docs_per_shard=4,
                              workers=workers, progress=False)
    docs = read_docs(tmp_path / "corpus")
    assert as_records(docs) == EXPECTED
    assert stats["shards"] == 2 and stats["docs"] == 6 and stats["mentions"] == 12
    assert stats["links_outside_kb"] == 2  # Mercury, Nowhere
    assert [doc.user_data["title"] for doc in docs[:3]] == ["Paris"] * 3
    for doc in docs:
        for ent in doc.ents:
            assert ent.label_ == "ENT"
            assert doc.text[ent.start_char:ent.end_char] == ent.text
    meta = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    assert meta["docs"] == 6


def test_max_per_entity(tmp_path, kb_and_dump):
    kb, wikipedia = kb_and_dump
    write_wiki_corpus(wikipedia, kb, tmp_path / "corpus", max_per_entity=1, workers=1,
                      progress=False)
    assert as_records(read_docs(tmp_path / "corpus")) == [
        EXPECTED[0], EXPECTED[1],
        ("Paris is a myth. Mercury is a planet. Hello World and Nowhere.",
         [("Hello World", "Q4")])]


def test_markup_offsets():
    text = ("{{Infobox|a={{nested|[[X]]}}}}\n"
            "'''Bold''' [[A_b|''an'' A]] <ref name=x>[[R]]</ref>and [http://x.org the site] "
            "[[Category:C]]\n[[B]]<!-- [[C]] -->.\n{| class=wikitable\n| [[T]]\n|}\n"
            "* [[List item]]\n\n== [[Heading]] ==\nLast [[:Category:C|cat]] [[D|]]")
    paragraphs = article_paragraphs(text)
    assert [(p, [(p[s:e], t) for s, e, t in m]) for p, m in paragraphs] == [
        ("Bold an A and the site B.", [("an A", "A b"), ("B", "B")]),
        ("Last cat D", [("D", "D")]),
    ]


def test_cli_corpus(tmp_path, kb_and_dump):
    kb, wikipedia = kb_and_dump
    result = runner.invoke(app, ["wiki", "corpus", "--wikipedia", str(wikipedia), "--kb",
                                 str(kb), "-o", str(tmp_path / "c"), "--max-docs", "2",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 docs with 4 mentions" in result.output
    assert as_records(read_docs(tmp_path / "c")) == EXPECTED[:2]
    nokb = tmp_path / "nokb"
    nokb.mkdir()
    result = runner.invoke(app, ["wiki", "corpus", "--wikipedia", str(wikipedia), "--kb",
                                 str(nokb), "-o", str(tmp_path / "c2"), "--no-progress"])
    assert result.exit_code == 1 and "has no wikipedia_titles.tsv" in result.output
    with pytest.raises(DumpError, match="No dump"):
        write_wiki_corpus(tmp_path / "missing.xml.bz2", kb, tmp_path / "c3", progress=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_is_not_a_wikipedia_dump_is_an_error(tmp_path, kb_and_dump, workers):
    # With 2 workers the .bz2 goes to indexed_bzip2 (when installed), which read
    # a file that is not bzip2 data as empty: 0 docs and exit 0 before.
    import bz2

    kb, _ = kb_and_dump
    junk = tmp_path / "junk.xml.bz2"
    junk.write_bytes(b"not bzip2 data \xff\xfe")
    with pytest.raises(DumpError, match="could not be read to the end"):
        write_wiki_corpus(junk, kb, tmp_path / "c1", workers=workers, progress=False)
    empty = tmp_path / "empty.xml.bz2"
    empty.write_bytes(bz2.compress(b""))
    with pytest.raises(DumpError, match="holds no article"):
        write_wiki_corpus(empty, kb, tmp_path / "c2", workers=workers, progress=False)
    result = runner.invoke(app, ["wiki", "corpus", "--wikipedia", str(junk), "--kb", str(kb),
                                 "-o", str(tmp_path / "c3"), "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("text", [
    "They don't live in the U.S. anymore, y'all.",
    "Paris  (France) was founded c. 250 BC; it's \u00abla Ville\u00bb \u2014 isn't it?",
    "",
])
def test_docs_made_from_the_workers_tokens_are_the_tokenizers_docs(text):
    # The workers send tokens, not docs; the main process must rebuild the same
    # doc, the norms of the tokenizer's exceptions included ("n't" -> "not").
    nlp = spacy.blank("en")
    set_language("en")
    expected = nlp.make_doc(text)
    doc = tokens_doc(nlp.vocab, tokenize(text))
    assert doc.text == expected.text
    assert [(t.text, t.whitespace_, t.norm_) for t in doc] == \
        [(t.text, t.whitespace_, t.norm_) for t in expected]


def test_the_shard_writer_writes_what_docbin_add_writes():
    # ShardWriter skips DocBin.add's per-token string reads; the shard's bytes
    # must not change: exception norms, entities with kb ids, empty docs,
    # and consecutive paragraphs of one article (the packed title reused).
    nlp = spacy.blank("en")
    set_language("en")
    texts = [("Paris", "They don't live in Paris (France) anymore, y'all."),
             ("Paris", "Paris is old."), ("Empty", ""), ("Rome", "Rome, Italy; ROME.")]
    reference, writer = DocBin(store_user_data=True), ShardWriter()
    for title, text in texts:
        for target in (reference, writer):
            doc = tokens_doc(nlp.vocab, tokenize(text))
            doc.ents = [doc.char_span(doc.text.index(word), doc.text.index(word) + len(word),
                                      label="ENT", kb_id=f"Q{k}")
                        for k, word in enumerate(("Paris", "France", "Rome", "Italy"))
                        if word in doc.text]
            if target is reference:
                doc.user_data["title"] = title
                reference.add(doc)
            else:
                writer.add(doc, {"title": title})
    assert len(writer) == len(reference) == 4
    assert writer.shard.to_bytes() == reference.to_bytes()
    docs = list(writer.shard.get_docs(nlp.vocab))
    assert [d.user_data["title"] for d in docs] == ["Paris", "Paris", "Empty", "Rome"]
    assert [t.norm_ for t in docs[0]][2] == "not"

"""Stage 1's decoders and chunking: msgspec's projection and the json fallback
give the same records, bad lines and KB; chunks cut at record boundaries."""

import hashlib
import io
import json

import pytest
from spacy.vocab import Vocab

from entity_linker import InMemoryLookupKB
from entity_linker.wikidata import WikiKBConfig, build_wikidata_kb
from entity_linker.wikidata import entities as wd_entities
from entity_linker.wikidata.dumps import Chunk, iter_chunks

msgspec = pytest.importorskip("msgspec")

ODD_LINES = [
    # empty maps written as [] (Wikibase does), nulls, unexpected shapes
    '{"type": "item", "id": "Q10", "labels": [], "descriptions": null, "aliases": [],'
    ' "claims": [], "sitelinks": {"enwiki": {"title": "Ten"}}}',
    '{"type": "item", "id": "Q11", "labels": {"en": {"value": 11}}, "aliases": {"en": ['
    '"plain string", {"value": "Eleven"}]}, "claims": {"P31": [7, {"rank": "deprecated",'
    ' "mainsnak": {"datavalue": {"value": {"id": "Q5"}}}}, {"mainsnak": {"datavalue":'
    ' {"value": {"numeric-id": 6}}}}]}, "sitelinks": {"enwiki": {"title": "XI"}}}',
    '{"type": "item", "id": "Q12", "labels": {"mul": {"value": "Douze"}}, "aliases": '
    '{"mul": [{"value": "  Twelve  "}]}, "claims": {"P17": [{"mainsnak": {"datavalue":'
    ' {"value": "Q1"}}}], "P131": [{"mainsnak": {"datavalue": {"value": {"id": "Q12"}}}}]},'
    ' "sitelinks": {"enwiki": {"title": "Twelve"}, "frwiki": {"title": "Douze"}}}',
    '{"type": "item", "id": "Q13", "sitelinks": ["enwiki"], "labels": {"en": "Thirteen"}}',
    '{"type": "item", "id": "Q14", "labels": {"en": {"value": "Fourteen"}}, '
    '"sitelinks": {"enwiki": "Fourteen"}}',
    '{"type": "item", "id": "Q15", "labels": {"en": {"value": "Lone \\ud800"}}, '
    '"sitelinks": {"enwiki": {"title": "Fifteen"}}}',
    '{"type": "item", "id": "Q16", "sitelinks": {"enwiki": {"title": "Sixteen"}}, '
    '"labels": {"en": {"value": "Sixteen"}}, "labels": {"en": {"value": "Second"}}}',
    '{"type": "item", "id": "Q17", "claims": {"P31": null}, "sitelinks": {"enwiki": '
    '{"title": "Seventeen"}}, "extra": [1, {"deep": [true, false, null, 1.5e3]}]}',
    '{"type": "item", "id": "Q18", "sitelinks": {"enwiki": {"title": "Eighteen"}}, '
    '"extra": [1,,2]}',
    '{"type": "item", "id": "Q19", "sitelinks": {"enwiki": {"title": "Nineteen"}}, '
    '"value": NaN}',
    '{"id": "Q20", "sitelinks": {"enwiki": {"title": "Twenty"}}}',
    '{"type": "property", "id": "P20", "sitelinks": {"enwiki": {"title": "P"}}}',
    '{"type": "item", "id": 21, "sitelinks": {"enwiki": {"title": "21"}}}',
]


def _parse(lines, use_msgspec, monkeypatch, lang="en"):
    data = ("[\n" + "".join(f"{line},\n" for line in lines) + "]\n").encode("utf8")
    with monkeypatch.context() as patch:
        if not use_msgspec:
            patch.setattr(wd_entities, "msgspec", None)
        wd_entities.set_filter(wd_entities.EntityFilter(lang=lang))
        try:
            out, n_lines, bad, examples = wd_entities.parse_chunk(Chunk(data, 1))
        finally:
            wd_entities.set_filter(wd_entities.EntityFilter())
    records = [json.loads(line) for line in out.split(b"\n") if line]
    return records, n_lines, bad, examples


@pytest.mark.parametrize("lang", ["en", "mul", "fr"])
def test_projection_same_as_json(monkeypatch, dumps, lang):
    lines = [json.dumps(item, ensure_ascii=False) for item in dumps.items] + ODD_LINES
    fast = _parse(lines, True, monkeypatch, lang)
    slow = _parse(lines, False, monkeypatch, lang)
    assert wd_entities.decoder_name() == "msgspec"
    assert fast == slow
    if lang == "en":
        records, n_lines, bad, examples = fast
        kept = {r["id"]: r for r in records}
        assert kept["Q10"]["name"] == "Ten" and kept["Q10"]["aliases"] == ["Ten"]
        assert kept["Q11"]["parents"] == ["Q6"]  # deprecated Q5 and the bad statement skipped
        assert kept["Q12"]["name"] == "Douze" and kept["Q12"]["aliases"] == ["Douze", "Twelve"]
        assert kept["Q16"]["name"] == "Second"  # the last of two keys, as json has it
        assert kept["Q11"]["name"] == "XI" and kept["Q11"]["aliases"] == ["XI", "Eleven"]
        assert "Q13" not in kept and "Q14" not in kept  # no usable enwiki sitelink
        assert n_lines == len(lines)
        assert bad == 4 and examples == [  # NaN (Q19) is valid to json
            "line 17: text that is not valid Unicode",
            "line 20: invalid JSON (Expecting value: line 1 column 91 (char 90))",
            "line 22: not a Wikidata entity (no 'id' and 'type')",
            "line 24: not a Wikidata entity (no 'id' and 'type')"]
        assert "Q15" not in kept and "Q19" in kept


def test_lone_surrogate_is_a_bad_line(monkeypatch):
    line = ('{"type": "item", "id": "Q15", "labels": {"en": {"value": "Lone \\ud800"}}, '
            '"sitelinks": {"enwiki": {"title": "Fifteen"}}}')
    for use_msgspec in (True, False):
        records, _, bad, examples = _parse([line], use_msgspec, monkeypatch)
        assert records == [] and bad == 1
        assert examples == ["line 2: text that is not valid Unicode"]


def _kb_digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in ("kb.bin", "wikipedia_titles.tsv")}


@pytest.mark.parametrize("workers", [1, 2])
def test_json_fallback_same_kb(tmp_path, dumps, monkeypatch, workers):
    items = list(dumps.items) + [json.loads(line) for line in ODD_LINES[:3]]
    dump = dumps.write_wikidata(tmp_path / "wd.json.gz", items=items)
    wiki = dumps.write_wikipedia(tmp_path / "wp.xml.bz2")
    reports = {}
    for name in ("msgspec", "json"):
        with monkeypatch.context() as patch:
            if name == "json":
                patch.setattr(wd_entities, "msgspec", None)
            reports[name] = build_wikidata_kb(WikiKBConfig(
                wikidata=dump, wikipedia=wiki, output=tmp_path / name, workers=workers,
                progress=False))
    assert reports["msgspec"]["wikidata"] == reports["json"]["wikidata"]
    assert reports["msgspec"]["kb"] == reports["json"]["kb"]
    assert _kb_digest(tmp_path / "msgspec") == _kb_digest(tmp_path / "json")
    kb = InMemoryLookupKB(Vocab(), 1)
    kb.from_disk(tmp_path / "msgspec")
    assert {"Q10", "Q11", "Q12", "Q90"} <= set(kb.get_entity_strings())
    assert kb.get_name("Q12") == "Douze"


class _Reads:
    """A reader that hands out the data in reads of fixed sizes."""

    def __init__(self, data, size):
        self.file = io.BytesIO(data)
        self.size = size

    def read(self, n):
        return self.file.read(min(n, self.size))


@pytest.mark.parametrize("size", [1, 5, 7, 16, 1000])
def test_iter_chunks_cut_at_boundaries(size):
    data = b"".join(b"<page>%d\nline\n</page>\n" % k for k in range(20)) + b"tail"
    for boundary in (b"\n", b"</page>\n"):
        chunks = list(iter_chunks(_Reads(data, size), boundary, chunk_bytes=size))
        assert b"".join(c.data for c in chunks) == data
        assert all(c.data.endswith(boundary) for c in chunks[:-1])
        assert chunks[-1].data.endswith(b"tail")
        if size == 1:  # a chunk per record
            assert len(chunks) == data.count(boundary) + 1
        line = 1
        for chunk in chunks:
            assert chunk.first_line == line
            line += chunk.data.count(b"\n")


def _parse_both(lines, flt):
    """parse_chunk's results with msgspec and with json (msgspec hidden)."""
    data = ("[\n" + "".join(f"{line},\n" for line in lines) + "]\n").encode("utf8")
    results = []
    for hide in (False, True):
        saved = wd_entities.msgspec
        wd_entities.set_filter(flt)
        try:
            if hide:
                wd_entities.msgspec = None
            results.append(wd_entities.parse_chunk(Chunk(data, 1)))
        finally:
            wd_entities.msgspec = saved
            wd_entities.set_filter(wd_entities.EntityFilter())
    return [([json.loads(line) for line in out.split(b"\n") if line], *rest)
            for out, *rest in results]


def _entities(odd: bool):
    """Wikidata entities of the dump's shape (the fast path reads them), with
    ``odd`` now and then with a value of another type anywhere."""
    from hypothesis import strategies as st

    def mostly(good, *others):
        # one_of's branches are equally likely
        return st.one_of(good, good, good, good, *others) if odd else good

    codes = st.sampled_from(["en", "mul", "fr", "zh-hans"])
    text = st.one_of(st.text(max_size=12), st.sampled_from(["", "  ", " a  b ", "Paris"]))
    value = mostly(text, st.integers(), st.none())
    entry = mostly(st.fixed_dictionaries({"language": codes, "value": value}),
                   st.just({}), st.none(), text)
    texts = mostly(st.dictionaries(codes, entry, max_size=3), st.just([]),
                   st.lists(st.integers(), min_size=1, max_size=2), st.none())
    aliases = mostly(st.dictionaries(codes, mostly(st.lists(entry, max_size=3), st.none(),
                                                   text), max_size=3),
                     st.just([]), st.lists(text, min_size=1, max_size=2), st.none())
    qid = mostly(st.integers(0, 12).map(lambda k: f"Q{k}"), text, st.integers())
    snak_value = mostly(st.fixed_dictionaries({"id": qid}),
                        st.fixed_dictionaries({"numeric-id": st.integers(0, 12)}),
                        st.just({}), text, st.none())
    datavalue = mostly(st.fixed_dictionaries({"value": snak_value}), st.just({}),
                       st.none(), text)
    mainsnak = mostly(st.fixed_dictionaries({"datavalue": datavalue}), st.just({}),
                      st.none(), st.integers())
    rank = mostly(st.sampled_from(["normal", "deprecated", "preferred"]), st.none(),
                  st.integers())
    statement = mostly(st.fixed_dictionaries({"mainsnak": mainsnak, "rank": rank}),
                       st.fixed_dictionaries({"mainsnak": mainsnak}), st.integers(),
                       st.none())
    claims = mostly(
        st.dictionaries(st.sampled_from(["P31", "P279", "P17", "P131", "P999"]),
                        mostly(st.lists(statement, max_size=3), st.none()), max_size=4),
        st.just([]), st.lists(st.integers(), min_size=1, max_size=2), st.none())
    link = mostly(st.fixed_dictionaries({"title": mostly(text, st.integers(), st.none())}),
                  st.just({}), text, st.none())
    sitelinks = mostly(
        st.dictionaries(st.sampled_from(["enwiki", "frwiki", "mulwiki", "zh-hanswiki"]),
                        link, max_size=3),
        st.just([]), st.lists(text, min_size=1, max_size=2), st.none())
    return st.fixed_dictionaries(
        {"id": mostly(st.integers(0, 12).map(lambda k: f"Q{k}"), text, st.integers()),
         "type": mostly(st.just("item"), st.just("property"))},
        optional={"labels": texts, "descriptions": texts, "aliases": aliases,
                  "claims": claims, "sitelinks": sitelinks})


def test_projection_same_as_json_on_random_entities():
    """Fuzzing: the fast path and json agree on entities of every odd shape."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    filters = st.builds(wd_entities.EntityFilter, st.sampled_from(["en", "mul", "zh-hans"]),
                        st.booleans(), st.integers(0, 2),
                        st.sampled_from([frozenset(), frozenset({"Q1", "Q2"})]),
                        st.sampled_from([frozenset(), frozenset({"Q3"})]))

    @settings(max_examples=250, deadline=None)
    @given(st.lists(st.one_of(_entities(False), _entities(True)), min_size=1, max_size=6),
           filters)
    def check(entities, flt):
        lines = [json.dumps(entity) for entity in entities]  # \\u escapes: surrogates too
        fast, slow = _parse_both(lines, flt)
        assert fast == slow

    check()


@pytest.mark.parametrize("isal", [True, False])
def test_gzip_reader_with_and_without_isal(tmp_path, dumps, monkeypatch, isal):
    """.gz dumps read the same with isal and with the standard library's gzip;
    a truncated one is reported either way."""
    import gzip
    import sys

    from entity_linker.wikidata.dumps import DumpError, DumpReader

    if isal:
        pytest.importorskip("isal")
    else:
        monkeypatch.setitem(sys.modules, "isal", None)  # its import fails
    dump = dumps.write_wikidata(tmp_path / "wd.json.gz")
    reader = DumpReader(dump)
    assert (type(reader.file).__module__ == "isal.igzip") == isal
    data = b"".join(iter(lambda: reader.read(100), b""))
    reader.close()
    assert data == gzip.decompress(dump.read_bytes())
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(dump.read_bytes()[:200])
    reader = DumpReader(cut)
    with pytest.raises(DumpError, match="could not be read to the end"):
        while reader.read(100):
            pass
    reader.close()

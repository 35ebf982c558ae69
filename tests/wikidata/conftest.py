"""Small Wikidata and Wikipedia dumps in the real formats, written by the tests."""

import bz2
import gzip
import json
from pathlib import Path

import pytest


def item(qid, label=None, desc=None, aliases=(), site=None, claims=None, labels=None,
         sitelinks=("frwiki",)):
    """A Wikidata item as the JSON dump holds it (claims: property -> QIDs)."""
    entity = {"type": "item", "id": qid, "labels": {}, "descriptions": {}, "aliases": {},
              "claims": {}, "sitelinks": {}}
    if label:
        entity["labels"]["en"] = {"language": "en", "value": label}
    for lang, value in (labels or {}).items():
        entity["labels"][lang] = {"language": lang, "value": value}
    if desc:
        entity["descriptions"]["en"] = {"language": "en", "value": desc}
    if aliases:
        entity["aliases"]["en"] = [{"language": "en", "value": a} for a in aliases]
    for prop, ids in (claims or {}).items():
        entity["claims"][prop] = [{
            "mainsnak": {"snaktype": "value", "property": prop, "datatype": "wikibase-item",
                         "datavalue": {"type": "wikibase-entityid",
                                       "value": {"entity-type": "item",
                                                 "numeric-id": int(i[1:]), "id": i}}},
            "type": "statement", "id": f"{qid}$x{n}", "rank": "normal"}
            for n, i in enumerate(ids)]
    if site:
        entity["sitelinks"]["enwiki"] = {"site": "enwiki", "title": site, "badges": []}
        for other in sitelinks:
            entity["sitelinks"][other] = {"site": other, "title": site, "badges": []}
    return entity


ITEMS = [
    item("Q90", "Paris", "capital of France", ["City of Light"], "Paris",
         {"P31": ["Q515"], "P17": ["Q142"]}, sitelinks=("frwiki", "dewiki")),
    item("Q142", "France", "country in Europe", (), "France", {"P31": ["Q6256"]}),
    item("Q515", "city", "large human settlement", (), "City", {"P279": ["Q486972"]}),
    item("Q167646", "Paris", "son of Priam", (), "Paris (mythology)", {"P31": ["Q5"]}),
    # Non-English labels: the name falls back to "mul", then to the article title.
    item("Q243", None, None, (), "Eiffel Tower", {"P131": ["Q90"]},
         labels={"fr": "Tour Eiffel", "mul": "Tour Eiffel"}),
    item("Q4", None, None, (), "Hello World", labels={"de": "Hallo Welt"}, sitelinks=()),
    item("Q999", "Paris", "Wikimedia disambiguation page", (), "Paris (disambiguation)",
         {"P31": ["Q4167410"]}),
    item("Q777", "Mercury", None, (), "Mercury", sitelinks=()),  # a disambiguation page
    item("Q2", "Earth", "planet", ()),  # no enwiki sitelink
    item("Q3", "Some Paper", "scholarly article", (), "Some Paper", {"P31": ["Q13442814"]},
         sitelinks=()),
]
PROPERTY = {"type": "property", "id": "P31", "labels": {"en": {"language": "en",
                                                               "value": "instance of"}}}
BAD_LINES = [
    'not json at all',
    '{"type": "item", "id": "Q5000", "sitelinks": {"enwiki": oops}}',
    '{"enwiki": {"title": "No id"}}',
]


def write_wikidata(path, items=ITEMS, bad_lines=BAD_LINES, extra=(PROPERTY,)):
    """A Wikidata JSON dump: '[', one entity per line ending with ',', ']'.
    Bad lines come after the first two items (lines 4, 5 and 6)."""
    lines = [json.dumps(e, ensure_ascii=False) for e in list(items[:2])]
    lines += list(bad_lines)
    lines += [json.dumps(e, ensure_ascii=False) for e in list(items[2:]) + list(extra)]
    text = "[\n" + "".join(f"{line},\n" for line in lines[:-1]) + lines[-1] + "\n]\n"
    path = Path(path)
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "wt", encoding="utf8") as file:
        file.write(text)
    return path


PAGES = [
    ("Paris", 0, None, """{{Infobox settlement|name=Paris|country=[[France]]}}
'''Paris''' is the capital of [[France]].<ref>{{cite web|title=[[France]] facts}}</ref> \
It is called the [[City of Light|city of light]].

In myth, [[Paris (mythology)|Paris]] took Helen. See the [[eiffel_Tower|''Eiffel Tower'']].
[[File:Paris.jpg|thumb|The [[Eiffel Tower]] at night]]
<!-- [[Mercury]] is hidden -->
== History ==
The name [[Paris#Name|Paris]] is old.
[[Category:Capitals]] [[fr:Paris]] [[#History|below]] [[wikt:Paris]]"""),
    ("France", 0, None, """[[Paris]] is the capital of France. [[Paris|The capital]] is \
large & old. [[paris]] again.

[[Paris (mythology)|]] is a myth. [[Mercury]] is a planet. [[Hello World]] and [[Nowhere]]."""),
    ("Eiffel Tower", 0, None, "The tower is in [[Paris]], [[France]]. {{convert|300|m}}"),
    ("City of Light", 0, "Paris", "#REDIRECT [[Paris]]"),
    ("Lutetia", 0, "Paris", "#REDIRECT [[Paris]] {{R from former name}}"),
    ("Eiffel tower", 0, "Eiffel Tower", "#REDIRECT [[Eiffel Tower]]"),
    ("Mercury", 0, None, "'''Mercury''' may be:\n* [[Mercury (planet)]]\n{{disambiguation}}"),
    ("Paris (disambiguation)", 0, None, "* [[Paris]]\n* [[Paris (mythology)]]\n{{Disambig|geo}}"),
    ("Talk:Paris", 1, None, "[[France]] [[France]]"),
]


def write_wikipedia(path, pages=PAGES):
    """A MediaWiki XML export (pages-articles) with redirects and namespaces."""
    from xml.sax.saxutils import escape, quoteattr

    parts = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" '
             'xml:lang="en">\n  <siteinfo>\n    <sitename>Wikipedia</sitename>\n'
             '  </siteinfo>\n']
    for n, (title, ns, redirect, text) in enumerate(pages, 1):
        parts.append(f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n"
                     f"    <id>{n}</id>\n")
        if redirect:
            parts.append(f"    <redirect title={quoteattr(redirect)} />\n")
        parts.append(f"    <revision>\n      <id>{100 + n}</id>\n      <model>wikitext</model>\n"
                     f'      <text bytes="{len(text)}" xml:space="preserve">{escape(text)}'
                     "</text>\n    </revision>\n  </page>\n")
    parts.append("</mediawiki>\n")
    path = Path(path)
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "wt", encoding="utf8") as file:
        file.write("".join(parts))
    return path


@pytest.fixture
def dumps():
    """The writers, as a fixture (test modules cannot import each other)."""
    class Dumps:
        pass

    Dumps.item = staticmethod(item)
    Dumps.items = ITEMS
    Dumps.write_wikidata = staticmethod(write_wikidata)
    Dumps.write_wikipedia = staticmethod(write_wikipedia)
    Dumps.pages = PAGES
    return Dumps

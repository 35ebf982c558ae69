"""Knowledge bases and training corpora from the Wikidata and Wikipedia dumps.

``build_wikidata_kb(WikiKBConfig(...))`` (``entity-linker kb build --wikidata``)
streams a Wikidata JSON dump and optionally a Wikipedia pages-articles dump
into a KB in resumable stages (see ``build``); ``write_wiki_corpus``
(``entity-linker wiki corpus``) turns Wikipedia paragraphs and their links
into spaCy DocBin shards with gold mentions (see ``corpus``).
"""

from .build import TITLES_FILE, WikiKBConfig, build_wikidata_kb
from .dumps import DumpError

__all__ = ["DumpError", "TITLES_FILE", "WikiKBConfig", "build_wikidata_kb"]

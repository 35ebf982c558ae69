"""Training docs from Wikipedia: paragraphs whose links become gold mentions.

Each article paragraph is rendered to plain text (templates, tables, refs,
comments, tags, headings, lists, files and categories dropped; bold and
italic quotes removed; a link shows its anchor) while the character offsets
of its links are tracked, so every mention's offsets are exact. Link targets
map to QIDs through the KB's ``wikipedia_titles.tsv`` (article titles and
redirects, written by ``kb build --wikidata``); links to anything outside the
KB are left as plain text. ``max_per_entity`` caps the mentions of an entity
(later mentions of a capped entity stay plain text; a paragraph left without
mentions is dropped), so frequent entities do not drown the rest.
"""

import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy

from . import wikipedia as wp
from .build import TITLES_FILE, IntMap, title_hash
from .dumps import DumpError, parallel_map_chunks, progress_bar

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_REF = re.compile(r"<ref\b[^>/]*/>|<ref\b[^>]*>.*?(?:</ref>|\Z)", re.S | re.I)
_DROP_TAGS = re.compile(r"<(math|gallery|timeline|syntaxhighlight|source|pre|score|"
                        r"imagemap|chem|graph|mapframe)\b.*?(?:</\1>|\Z)", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)
_TAG = re.compile(r"<[^<>]{0,500}>")
_QUOTES = re.compile(r"'{2,}")
_SPACE = re.compile(r"\s+")
_MAGIC = re.compile(r"__[A-Z]+__")
_EXTERNAL = re.compile(r"\[(?:https?:|ftp:|//)[^\s\]]*\s*([^\]]*)\]")
# Lines that are not prose.
_SKIP_LINE = ("*", "#", ":", ";", "|", "!", "{", "}")

Mention = Tuple[int, int, str]


def _strip_nested(pattern: re.Pattern, text: str) -> str:
    while True:
        new = pattern.sub("", text)
        if new == text:
            return new
        text = new


def _close(text: str, start: int) -> int:
    """Index just after the ]] that closes the [[ at ``start`` (-1: none)."""
    depth = 0
    i = start
    while True:
        open_at = text.find("[[", i)
        close_at = text.find("]]", i)
        if close_at < 0:
            return -1
        if 0 <= open_at < close_at:
            depth += 1
            i = open_at + 2
        else:
            depth -= 1
            i = close_at + 2
            if depth == 0:
                return i


def _pieces(line: str) -> List[Tuple[str, Optional[str]]]:
    """(text, link target title or None) pieces of a line of wikitext."""
    pieces: List[Tuple[str, Optional[str]]] = []
    pos = 0
    while True:
        start = line.find("[[", pos)
        if start < 0:
            pieces.append((line[pos:], None))
            return pieces
        pieces.append((line[pos:start], None))
        end = _close(line, start)
        if end < 0:
            pieces.append((line[start:].replace("[[", "").replace("]]", ""), None))
            return pieces
        inner = line[start + 2:end - 2]
        pos = end
        if "[[" in inner:  # a file with a caption, or a broken link: dropped
            continue
        target, sep, anchor = inner.partition("|")
        title = wp.normalize_title(target)
        if title is None:
            if target.strip().startswith(":") and sep:  # [[:Category:X|shown text]]
                pieces.append((anchor, None))
            continue
        pieces.append((wp.anchor_text(target, anchor if sep else None), title))


def render_paragraph(lines: List[str]) -> Tuple[str, List[Mention]]:
    """Plain text of a paragraph's lines and its (start, end, target title) links."""
    text = ""
    mentions: List[Mention] = []
    for line in lines:
        line = _EXTERNAL.sub(r"\1", line)
        for piece, title in _pieces(line + " "):
            piece = _SPACE.sub(" ", _QUOTES.sub("", piece))
            if title is not None:
                piece = piece.strip()
                if not piece:
                    continue
            if text.endswith(" ") and piece.startswith(" "):
                piece = piece[1:]
            if not text and piece.startswith(" "):
                piece = piece.lstrip()
            if title is not None:
                mentions.append((len(text), len(text) + len(piece), title))
            text += piece
    return text.rstrip(), mentions


def article_paragraphs(wikitext: str) -> List[Tuple[str, List[Mention]]]:
    """The rendered paragraphs of an article (only those with a link)."""
    text = _COMMENT.sub("", wikitext)
    text = _DROP_TAGS.sub("", text)
    text = _REF.sub("", text)
    text = _strip_nested(_TEMPLATE, text)
    text = _strip_nested(_TABLE, text)
    text = _MAGIC.sub("", _TAG.sub("", text))
    paragraphs: List[Tuple[str, List[Mention]]] = []
    block: List[str] = []

    def flush() -> None:
        if block:
            rendered, mentions = render_paragraph(block)
            if mentions and rendered:
                paragraphs.append((rendered, mentions))
            block.clear()

    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("=") or stripped.startswith(_SKIP_LINE):
            flush()
            continue
        block.append(stripped)
    flush()
    return paragraphs


# A paragraph's tokens as the workers send them: words, trailing spaces, and
# the norms the tokenizer's exceptions set ("n't" -> "not"), by token index.
Tokens = Tuple[List[str], List[bool], List[Tuple[int, str]]]
_TOKENIZER = None  # the workers' tokenizer (set_language)


def set_language(lang: str) -> None:
    """Pool initializer: the workers tokenize the paragraphs with this
    language's tokenizer, so the main process only assembles the docs."""
    import spacy

    global _TOKENIZER
    _TOKENIZER = spacy.blank(lang).tokenizer


def tokenize(text: str) -> Tokens:
    """The tokens of ``text`` (set_language first)."""
    doc = _TOKENIZER(text)
    return ([token.text for token in doc], [bool(token.whitespace_) for token in doc],
            [(token.i, token.norm_) for token in doc if token.norm != token.lex.norm])


def tokens_doc(vocab, tokens: Tokens):
    """The Doc of ``tokens``: the same as the tokenizer's doc of the text."""
    from spacy.tokens import Doc

    words, spaces, norms = tokens
    doc = Doc(vocab, words=words, spaces=spaces)
    for i, norm in norms:
        doc[i].norm_ = norm
    return doc


# The DocBin columns that hold strings' hashes (the rest are flags, offsets, ids).
_STRING_ATTRS = ("ORTH", "NORM", "LEMMA", "TAG", "DEP", "ENT_TYPE", "ENT_KB_ID", "MORPH",
                 "ENT_ID")


class ShardWriter:
    """Adds docs of words, spaces, norms and entities (no tags, lemmas,
    morphology, parses, cats or span groups) to a ``DocBin`` with each doc's
    user data: the bytes ``DocBin.add`` would give, ~2.7x faster (1.46 -> 0.54
    ms per doc of ~450 tokens).

    ``DocBin.add`` reads nine string attributes of every token in Python to
    collect the strings, and packs each doc's user data with a new srsly
    packer, which looks up srsly's encoder registry (entry points) every
    time: most of ``wiki corpus``'s main process. Here the strings are the
    distinct hashes of the doc's array, and one packer is reused.
    """

    def __init__(self) -> None:
        from spacy.attrs import IDS, SPACY
        from spacy.tokens import DocBin
        from srsly.msgpack import Packer

        self._docbin = DocBin
        self._spacy = SPACY
        self._packer = Packer(use_bin_type=True)  # srsly.msgpack_dumps's settings
        self.shard = DocBin(store_user_data=True)
        string_attrs = {IDS[name] for name in _STRING_ATTRS}
        self._string_columns = [i for i, attr in enumerate(self.shard.attrs)
                                if attr in string_attrs]
        self._packed: Tuple[Optional[dict], bytes] = (None, b"")

    def __len__(self) -> int:
        return len(self.shard)

    def add(self, doc, user_data: dict) -> None:
        """``shard.add(doc)`` with ``doc.user_data == user_data``."""
        shard = self.shard
        array = doc.to_array(shard.attrs)
        shard.tokens.append(array)
        shard.spaces.append(doc.to_array(self._spacy).reshape(-1, 1).astype(bool))
        shard.flags.append({"has_unknown_spaces": doc.has_unknown_spaces})
        strings = doc.vocab.strings
        shard.strings.update(strings[int(key)]
                             for key in numpy.unique(array[:, self._string_columns]))
        shard.strings.add("")  # what an unset tag, lemma, dep or morph reads as
        shard.cats.append(doc.cats)
        if self._packed[0] != user_data:  # a paragraph of the same article
            self._packed = (dict(user_data), self._packer.pack(user_data))
        shard.user_data.append(self._packed[1])
        shard.span_groups.append(doc.spans.to_bytes())

    def write(self, path: Path) -> None:
        """Write the shard to ``path`` and start an empty one."""
        self.shard.to_disk(path)
        self.shard = self._docbin(store_user_data=True)


def parse_chunk(chunk) -> Tuple[List[Tuple[str, str, List[Mention], Tokens]], int]:
    """(title, paragraph, mentions, tokens) of the chunk's articles, and the
    article count."""
    out = []
    articles = 0
    for page in wp.iter_pages(chunk.data):
        if page.ns != 0 or page.redirect is not None or wp.is_disambiguation(page.text):
            continue
        articles += 1
        for text, mentions in article_paragraphs(page.text):
            out.append((page.title, text, mentions, tokenize(text)))
    return out, articles


def load_titles(kb_path: Path) -> IntMap:
    """Title hash -> QID number, from a KB folder's wikipedia_titles.tsv."""
    path = Path(kb_path) / TITLES_FILE
    if not path.exists():
        raise DumpError(f"{kb_path} has no {TITLES_FILE}: build the KB with `entity-linker kb "
                        "build --wikidata ... --wikipedia ...`, which maps Wikipedia titles "
                        "to its QIDs.")
    keys, values = [], []
    with open(path, encoding="utf8") as file:
        for line in file:
            title, _, qid = line.rstrip("\n").partition("\t")
            if qid[1:].isdigit():
                keys.append(title_hash(title))
                values.append(int(qid[1:]))
    return IntMap(numpy.array(keys, dtype=numpy.int64), numpy.array(values, dtype=numpy.int64))


def write_wiki_corpus(wikipedia: Path, kb_path: Path, output: Path, *, lang: str = "en",
                      docs_per_shard: int = 10000, max_per_entity: Optional[int] = None,
                      max_docs: Optional[int] = None, workers: int = 0, label: str = "ENT",
                      progress: bool = True, chunk_bytes: int = 4 << 20) -> Dict[str, Any]:
    """Write DocBin shards (``output/train-00000.spacy`` ...); RETURNS stats."""
    import spacy

    started = time.perf_counter()
    wikipedia = Path(wikipedia)
    if not wikipedia.is_file():
        raise DumpError(f"No dump at {wikipedia}.")
    titles = load_titles(Path(kb_path))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("train-*.spacy"):
        old.unlink()
    nlp = spacy.blank(lang)
    per_entity: Dict[int, int] = {}
    stats = {"articles": 0, "paragraphs": 0, "docs": 0, "mentions": 0, "shards": 0,
             "links_outside_kb": 0, "capped_mentions": 0, "unaligned_mentions": 0}
    shard = ShardWriter()
    size = wikipedia.stat().st_size
    bar = progress_bar(wikipedia, size, "Wikipedia corpus", progress)
    position = 0

    def write_shard() -> None:
        if len(shard):
            shard.write(output / f"train-{stats['shards']:05d}.spacy")
            stats["shards"] += 1

    def kept(qnum: int) -> bool:
        """The link's entity is in the KB and not capped yet."""
        return qnum >= 0 and (max_per_entity is None
                              or per_entity.get(qnum, 0) < max_per_entity)

    def count_dropped(qnum: int) -> None:
        stats["links_outside_kb" if qnum < 0 else "capped_mentions"] += 1

    done = False
    for (paragraphs, articles), reader in parallel_map_chunks(
            wikipedia, parse_chunk, workers=workers, boundary=wp.PAGE_END,
            chunk_bytes=chunk_bytes, initializer=set_language, initargs=(lang,),
            on_first=wp.check_first_chunk(wikipedia)):
        stats["articles"] += articles
        stats["paragraphs"] += len(paragraphs)
        targets = [m[2] for _, _, mentions, _ in paragraphs for m in mentions]
        qnums = titles.lookup([title_hash(t) for t in targets]).tolist() if targets else []
        k = 0
        for title, _, mentions, tokens in paragraphs:
            first, k = k, k + len(mentions)
            links = qnums[first:k]
            if not any(map(kept, links)):
                # Every link is outside the KB or capped: count them without
                # making a doc (most paragraphs, once the frequent entities are capped).
                for qnum in links:
                    count_dropped(qnum)
                continue
            doc = tokens_doc(nlp.vocab, tokens)
            ents = []
            for (start, end, _), qnum in zip(mentions, links):
                if not kept(qnum):
                    count_dropped(qnum)
                    continue
                span = doc.char_span(start, end, label=label, kb_id=f"Q{qnum}")
                if span is None:
                    stats["unaligned_mentions"] += 1
                    continue
                per_entity[qnum] = per_entity.get(qnum, 0) + 1
                ents.append(span)
            if not ents:
                continue
            doc.ents = ents
            shard.add(doc, {"title": title})
            stats["docs"] += 1
            stats["mentions"] += len(ents)
            if len(shard) >= docs_per_shard:
                write_shard()
            if max_docs is not None and stats["docs"] >= max_docs:
                done = True
                break
        if bar is not None:
            bar.update(max(0, reader.compressed_position - position))
            position = max(position, reader.compressed_position)
            seconds = max(time.perf_counter() - started, 1e-6)
            bar.set_postfix_str(f"docs {stats['docs']:,} ({stats['docs'] / seconds:,.0f}/s), "
                                f"mentions {stats['mentions']:,}", refresh=False)
        if done:
            break
    if bar is not None:
        bar.close()
    if not stats["articles"]:
        raise wp.no_article_error(wikipedia)
    write_shard()
    stats["entities"] = len(per_entity)
    stats["seconds"] = time.perf_counter() - started
    (output / "corpus.json").write_text(json.dumps(
        {"wikipedia": str(wikipedia), "kb": str(kb_path), "lang": lang,
         "max_per_entity": max_per_entity, "docs_per_shard": docs_per_shard, **stats},
        indent=2) + "\n", encoding="utf8")
    if progress:
        print(f"Wrote {stats['docs']:,} docs in {stats['shards']} shard(s) to {output}",
              file=sys.stderr)
    return stats

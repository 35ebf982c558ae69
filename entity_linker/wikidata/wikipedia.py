"""Parse MediaWiki XML export chunks (pages-articles.xml.bz2): pages, redirects, links.

Chunks are cut after ``</page>`` so each holds whole pages; a page is read
with a few regular expressions (no XML tree), which is several times faster
than ``iterparse`` and needs no state across chunks.
"""

import html
import re
from collections import Counter
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from .dumps import DumpError

PAGE_END = b"</page>\n"
_PAGE = re.compile(r"<page>(.*?)</page>", re.S)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_NS = re.compile(r"<ns>(-?\d+)</ns>")
_REDIRECT = re.compile(r'<redirect\s+title="([^"]*)"')
_TEXT = re.compile(r"<text\b[^>]*?(?:/>|>(.*?)</text>)", re.S)
_LINK = re.compile(r"\[\[([^\[\]|\n]+)(?:\|([^\[\]\n]*))?\]\]")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
# {{disambiguation}}, {{disambig|...}}, {{dab}}, {{hndis}}, {{Airport disambiguation}} ...
_DISAMBIGUATION = re.compile(
    r"\{\{\s*(?:[\w .-]*\bdisambiguation|disambig|disamb|dab|hndis|geodis|numberdis|"
    r"letter-number combination disambiguation|mil-unit-dis|schooldis|shipindex|"
    r"roaddis|species latin name disambiguation)\s*(?:\||\}\})", re.I)
# Namespaces and interwiki prefixes whose links are not links to articles.
NAMESPACES = frozenset("""file image media category template help portal wikipedia wp
project user special module draft timedtext mediawiki book gadget topic wikt wiktionary
w wikinews n wikiquote q wikisource s wikibooks b wikiversity v wikivoyage voy commons c meta
m species d wikidata mw foundation wmf outreach incubator phab iarchive doi rfc arxiv
""".split()) | frozenset(f"{ns} talk" for ns in (
    "talk", "user", "wikipedia", "file", "image", "template", "help", "category", "portal",
    "draft", "module", "mediawiki", "timedtext"))
_LANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")


class Page(NamedTuple):
    title: str
    ns: int
    redirect: Optional[str]
    text: str


def iter_pages(data: bytes) -> Iterator[Page]:
    text = data.decode("utf8", "replace")
    for match in _PAGE.finditer(text):
        body = match.group(1)
        title = _TITLE.search(body)
        ns = _NS.search(body)
        if title is None:
            continue
        redirect = _REDIRECT.search(body)
        content = _TEXT.search(body)
        yield Page(html.unescape(title.group(1)), int(ns.group(1)) if ns else 0,
                   html.unescape(redirect.group(1)) if redirect else None,
                   html.unescape(content.group(1) or "") if content else "")


def normalize_title(target: str) -> Optional[str]:
    """An article title as a link target names it, or None for links elsewhere.

    ``[[paris_(city)#History]]`` -> "Paris (city)"; links to another
    namespace (File:, Category:, ...), another wiki (fr:, wikt:) or a section
    of the same page give None.
    """
    target = target.replace("_", " ").strip()
    if target.startswith(":"):
        target = target[1:].lstrip()
    target = target.split("#", 1)[0]
    target = " ".join(target.split())
    if not target:
        return None
    if ":" in target:
        prefix = target.split(":", 1)[0].strip()
        low = prefix.lower()
        if low in NAMESPACES or _LANGUAGE_PREFIX.match(prefix):
            return None
    return target[0].upper() + target[1:]


def is_disambiguation(text: str) -> bool:
    return _DISAMBIGUATION.search(text) is not None


_MARKUP = re.compile(r"'{2,}|<[^>]*>")


def anchor_text(target: str, anchor: Optional[str]) -> str:
    """The text a link shows: its anchor, else its target (``[[A|]]``: A without
    a parenthesised suffix), without bold/italic quotes and tags."""
    if anchor is None:
        text = target.lstrip(":")
    elif not anchor.strip():
        text = re.sub(r"\s*\([^)]*\)\s*$", "", target.lstrip(":"))
    else:
        text = anchor
    return " ".join(_MARKUP.sub("", text).split())


def _link(raw_target: str, anchor: Optional[str]) -> Optional[Tuple[str, str]]:
    title = normalize_title(raw_target)
    if title is None:
        return None
    shown = anchor_text(raw_target, anchor)
    if shown and "{{" not in shown and len(shown) <= 200:
        return shown, title
    return None


def page_links(text: str, cache: Optional[Dict[str, Any]] = None
               ) -> Iterator[Tuple[str, str]]:
    """(anchor text, normalised target title) of each article link of a page;
    ``cache`` (link markup -> result) saves re-parsing frequent links."""
    if cache is None:
        cache = {}
    if "<!--" in text:
        text = _COMMENT.sub("", text)
    for match in _LINK.finditer(text):
        markup = match.group(0)
        link = cache.get(markup, _MISSING)
        if link is _MISSING:
            link = cache[markup] = _link(match.group(1), match.group(2))
        if link is not None:
            yield link


_MISSING = object()


class WikiChunk(NamedTuple):
    links: Dict[Tuple[str, str], int]  # (anchor, "t:" + title) -> count
    redirects: List[Tuple[str, str]]  # (redirect title, target title)
    disambiguations: List[str]
    articles: int
    n_links: int


# On the XML-escaped text: a link whose anchor group keeps its "|" (so [[A]] and
# [[A|]] stay apart), and comments as the export escapes them.
_RAW_LINK = re.compile(r"\[\[([^\[\]|\n]+)(\|[^\[\]\n]*)?\]\]")
_RAW_COMMENT = re.compile(r"&lt;!--.*?(?:--&gt;|$)", re.S)
_TEXT_START = re.compile(r"<text\b[^>]*?(/>|>)")


def _raw_pages(text: str) -> Iterator[Tuple[str, int, Optional[str], str]]:
    """(title, ns, redirect, escaped wikitext) of each page, unescaping only the
    title and redirect: the wikitext is searched as it is escaped, and only the
    links found are unescaped (html.unescape of whole pages cost a third of the
    parse)."""
    for match in _PAGE.finditer(text):
        body = match.group(1)
        title = _TITLE.search(body)
        if title is None:
            continue
        start = _TEXT_START.search(body)
        head = body[:start.start()] if start else body
        ns = _NS.search(head)
        redirect = _REDIRECT.search(head)
        content = ""
        if start is not None and start.group(1) == ">":
            end = body.rfind("</text>")
            content = body[start.end():end] if end >= start.end() else ""
        yield (html.unescape(title.group(1)), int(ns.group(1)) if ns else 0,
               html.unescape(redirect.group(1)) if redirect else None, content)


def _markup_link(target: str, pipe: str) -> Optional[Tuple[str, str]]:
    """_link of the escaped groups of one link markup ("" pipe: no anchor)."""
    anchor = pipe[1:] if pipe else None
    if "&" in target:
        target = html.unescape(target)
    if anchor and "&" in anchor:
        anchor = html.unescape(anchor)
    return _link(target, anchor)


def parse_chunk(chunk) -> WikiChunk:
    """Articles, links, redirects and disambiguation pages of a chunk of pages.

    Link markups are counted per chunk in C (``Counter`` over ``findall``) and
    each distinct markup is parsed once.
    """
    markups: Counter = Counter()
    redirects: List[Tuple[str, str]] = []
    disambiguations: List[str] = []
    articles = 0
    for raw_title, ns, raw_redirect, text in _raw_pages(chunk.data.decode("utf8", "replace")):
        if ns != 0:
            continue
        title = normalize_title(raw_title)
        if title is None:
            continue
        if raw_redirect is not None:
            target = normalize_title(raw_redirect)
            if target is not None and target != title:
                redirects.append((title, target))
            continue
        if is_disambiguation(text):
            disambiguations.append(title)
            continue
        articles += 1
        if "&lt;!--" in text:
            text = _RAW_COMMENT.sub("", text)
        markups.update(_RAW_LINK.findall(text))
    links: Counter = Counter()
    n_links = 0
    for (target, pipe), count in markups.items():
        link = _markup_link(target, pipe)
        if link is not None:
            anchor, title = link
            links[(anchor, "t:" + title)] += count
            n_links += count
    return WikiChunk(dict(links), redirects, disambiguations, articles, n_links)


def no_article_error(path) -> DumpError:
    """The error of a dump that held no article (an empty or foreign file)."""
    return DumpError(f"{path} holds no article (namespace 0): is it a Wikipedia "
                     "pages-articles dump?")


def check_first_chunk(path):
    """on_first hook: reject a file that is not a MediaWiki XML export."""
    def check(data: bytes) -> None:
        if b"<mediawiki" not in data[:65536] and b"<page>" not in data[:1 << 20]:
            raise DumpError(f"{path} is not a Wikipedia XML dump (MediaWiki export format, "
                            "as enwiki-latest-pages-articles.xml.bz2).")
    return check

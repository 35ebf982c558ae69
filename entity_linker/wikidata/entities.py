"""Parse Wikidata JSON dump chunks into compact entity records.

The dump (``latest-all.json.gz`` / ``.bz2``) is a JSON array with one entity
per line: ``[`` on the first line, ``]`` on the last, every entity line ending
with a comma. Lines of items without a sitelink to the wanted wiki are
skipped without being parsed (a byte search), which is what makes a pass over
the ~100M items fast; every line is still checked to look like a JSON object.

With ``msgspec`` installed (``pip install ".[wikidata]"``) a kept line is
decoded into a projection of the entity: plain dicts holding only the fields
``entity_record`` reads (the labels, descriptions and aliases of the language
and "mul", the P31/P279/P17/P131 statements, the sitelinks' titles), the rest
of the line checked as JSON and skipped without building objects. A line the
projection does not fit (an unexpected shape, invalid JSON) is decoded again
by the standard library's ``json``, which also decodes every line when
``msgspec`` is missing, so both give the same records and the same bad lines
(except that ``json`` also rejects invalid UTF-8 inside fields it is not asked
for).
"""

import json
from functools import lru_cache
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    List,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from .dumps import MAX_REPORTED, DumpError

try:  # the fast decoder (the wikidata extra); json decodes everything without it
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None

DISAMBIGUATION_CLASS = "Q4167410"
# Statements stored as KB relations: instance of, subclass of, country, located in.
PARENT_PROPERTIES = ("P31", "P279", "P17", "P131")


class EntityFilter(NamedTuple):
    lang: str = "en"
    all_items: bool = False
    min_sitelinks: int = 0
    include_classes: FrozenSet[str] = frozenset()
    exclude_classes: FrozenSet[str] = frozenset()

    @property
    def site(self) -> str:
        return f"{self.lang}wiki"


_FILTER = EntityFilter()


def set_filter(entity_filter: EntityFilter) -> None:
    """Pool initializer: the filter the workers apply."""
    global _FILTER
    _FILTER = entity_filter


def decoder_name() -> str:
    """The decoder of kept lines: "msgspec" (the projection) or "json"."""
    return "json" if msgspec is None else "msgspec"


class _Unusual(Exception):
    """A decoded entity of a shape the fast path leaves to json."""


if msgspec is not None:
    # The projection: only the fields entity_record reads, strictly typed, so
    # that _projected_record needs no type checks; any other shape fails to
    # validate and the line goes to json and entity_record.
    class _Text(msgspec.Struct):
        value: Optional[str] = None

    class _DataValue(msgspec.Struct):
        value: Any = None

    class _Snak(msgspec.Struct):
        datavalue: Optional[_DataValue] = None

    class _Statement(msgspec.Struct):
        mainsnak: Optional[_Snak] = None
        rank: Optional[str] = None

    class _Link(msgspec.Struct):
        title: str = ""

    _Claims = msgspec.defstruct(
        "_Claims", [(prop, Optional[List[_Statement]], None) for prop in PARENT_PROPERTIES])


@lru_cache(maxsize=8)
def _projection_decoder(lang: str) -> Callable[[Any], Any]:
    """A msgspec decoder of the fields of an entity that ``entity_record`` reads
    for ``lang`` (every other field is checked as JSON and skipped).

    The language and "mul" are the fields ``first`` and ``second`` of the
    labels, descriptions and aliases (language codes are not all identifiers).
    Maps may be ``[]`` (Wikibase writes empty maps so in places) or null.
    """
    rename = {"first": lang, "second": "mul"} if lang != "mul" else {"first": "mul"}
    texts = msgspec.defstruct("_Texts", [(name, Optional[_Text], None) for name in rename],
                              rename=rename)
    aliases = msgspec.defstruct(
        "_Aliases", [(name, Optional[List[_Text]], None) for name in rename], rename=rename)

    def map_of(kind: Any) -> Any:
        return Union[kind, List[Any], None]

    entity = msgspec.defstruct("_Entity", [
        ("id", str), ("type", str), ("labels", map_of(texts), None),
        ("descriptions", map_of(texts), None), ("aliases", map_of(aliases), None),
        ("claims", map_of(_Claims), None), ("sitelinks", map_of(Dict[str, _Link]), None)])
    return msgspec.json.Decoder(entity).decode


def _mapping(value: Any) -> Any:
    """A projected map, None for an empty or missing one; raises _Unusual for a
    non-empty list (which entity_record turns into a bad line or reads oddly)."""
    if type(value) is list:
        if value:
            raise _Unusual
        return None
    return value


def _item_id(value: Any) -> Optional[str]:
    """The QID of a statement's entity value ("id", or the older "numeric-id")."""
    if not isinstance(value, dict):
        return None
    qid = value.get("id")
    if qid is None and value.get("numeric-id") is not None:
        qid = f"Q{value['numeric-id']}"
    return qid if isinstance(qid, str) and qid.startswith("Q") else None


def _dropped_by_class(classes: List[str], flt: EntityFilter) -> bool:
    """A disambiguation page, or a class the filter excludes or does not include."""
    return (DISAMBIGUATION_CLASS in classes
            or bool(flt.include_classes and not flt.include_classes.intersection(classes))
            or bool(flt.exclude_classes and flt.exclude_classes.intersection(classes)))


def _struct_ids(statements: Optional[list]) -> List[str]:
    """_claim_ids of projected statements."""
    ids: List[str] = []
    for statement in statements or ():
        if statement.rank == "deprecated" or statement.mainsnak is None:
            continue
        datavalue = statement.mainsnak.datavalue
        value = datavalue.value if datavalue is not None else None
        qid = _item_id(value)
        if qid is not None and qid not in ids:
            ids.append(qid)
    return ids


def _struct_text(texts: Any, fields: Tuple[str, ...]) -> str:
    """_text of projected texts."""
    if texts is not None:
        for name in fields:
            text = getattr(texts, name)
            if text is not None and text.value is not None and text.value.strip():
                return " ".join(text.value.split())
    return ""


def _projected_record(entity: Any, flt: EntityFilter) -> Optional[Dict[str, Any]]:
    """entity_record of a projected entity (the same record, checked by the
    tests against entity_record on the same lines)."""
    qid = entity.id
    if entity.type != "item" or not qid.startswith("Q"):
        return None
    sitelinks = _mapping(entity.sitelinks)
    link = sitelinks.get(flt.site) if sitelinks else None
    title = link.title if link is not None else ""
    if not title and not flt.all_items:
        return None
    n_sitelinks = len(sitelinks) if sitelinks else 0
    if n_sitelinks < flt.min_sitelinks:
        return None
    claims = _mapping(entity.claims)
    classes = _struct_ids(claims.P31) if claims is not None else []
    if _dropped_by_class(classes, flt):
        return None
    # entity_record reads the language, then "mul" (twice when the language is "mul")
    fields = ("first", "second") if flt.lang != "mul" else ("first", "first")
    labels = entity.labels if type(entity.labels) is not list else None
    name = _struct_text(labels, fields)
    entity_aliases = _mapping(entity.aliases)
    aliases = []
    for field in fields:
        if labels is not None:
            label = getattr(labels, field)
            if label is not None and label.value is not None:
                aliases.append(label.value)
        if entity_aliases is not None:
            for alias in getattr(entity_aliases, field) or ():
                if alias.value is not None:
                    aliases.append(alias.value)
    clean = _clean_aliases(aliases, name, title)
    parents = [parent for parent in classes if parent != qid]  # classes has no repeats
    if claims is not None:
        for prop in PARENT_PROPERTIES[1:]:
            for parent in _struct_ids(getattr(claims, prop)):
                if parent != qid and parent not in parents:
                    parents.append(parent)
    descriptions = entity.descriptions if type(entity.descriptions) is not list else None
    return {"id": qid, "title": title, "sitelinks": n_sitelinks, "name": name or title,
            "description": _struct_text(descriptions, fields), "aliases": clean,
            "parents": parents}


def _clean_aliases(aliases: List[str], name: str, title: str) -> List[str]:
    """The aliases with whitespace collapsed, empty ones and repeats dropped; the
    article title first when the item has no label in the language."""
    if not name and title:
        aliases.insert(0, title)
    seen = set()
    clean = []
    for alias in aliases:
        alias = " ".join(alias.split())
        if alias and alias not in seen:
            seen.add(alias)
            clean.append(alias)
    return clean


def _claim_ids(claims: Dict[str, Any], prop: str) -> List[str]:
    statements = claims.get(prop)
    if not statements:
        return []
    ids: List[str] = []
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("rank") == "deprecated":
            continue
        snak = statement.get("mainsnak") or {}
        value = (snak.get("datavalue") or {}).get("value")
        qid = _item_id(value)
        if qid is not None and qid not in ids:
            ids.append(qid)
    return ids


def _text(values: Any, lang: str) -> str:
    if not isinstance(values, dict):
        return ""
    for code in (lang, "mul"):
        value = (values.get(code) or {}).get("value")
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""


def entity_record(entity: Dict[str, Any], flt: EntityFilter) -> Optional[Dict[str, Any]]:
    """The compact record of a Wikidata item, or None when the filter drops it.

    Raises ValueError for an object that is not a Wikidata entity.
    """
    qid = entity.get("id")
    if not isinstance(qid, str) or "type" not in entity:
        raise ValueError("not a Wikidata entity (no 'id' and 'type')")
    if entity["type"] != "item" or not qid.startswith("Q"):
        return None
    sitelinks = entity.get("sitelinks") or {}
    link = sitelinks.get(flt.site) if isinstance(sitelinks, dict) else None
    title = link.get("title", "") if isinstance(link, dict) else ""
    if not title and not flt.all_items:
        return None
    if len(sitelinks) < flt.min_sitelinks:
        return None
    claims = entity.get("claims") or {}
    classes = _claim_ids(claims, "P31")
    if _dropped_by_class(classes, flt):
        return None
    lang = flt.lang
    labels = entity.get("labels") or {}
    name = _text(labels, lang)
    entity_aliases = entity.get("aliases") or {}
    aliases = []
    for code in (lang, "mul"):
        if isinstance(labels, dict):
            value = (labels.get(code) or {}).get("value")
            if isinstance(value, str):
                aliases.append(value)
        for alias in entity_aliases.get(code) or ():
            if isinstance(alias, dict):
                value = alias.get("value")
                if isinstance(value, str):
                    aliases.append(value)
    clean = _clean_aliases(aliases, name, title)
    parents = [parent for parent in classes if parent != qid]  # classes has no repeats
    for prop in PARENT_PROPERTIES[1:]:
        for parent in _claim_ids(claims, prop):
            if parent != qid and parent not in parents:
                parents.append(parent)
    return {"id": qid, "title": title, "sitelinks": len(sitelinks),
            "name": name or title, "description": _text(entity.get("descriptions") or {}, lang),
            "aliases": clean, "parents": parents}


def _json_line(line: bytes, flt: EntityFilter) -> Tuple[Optional[bytes], Optional[str]]:
    """(encoded record or None, problem or None) of a line, decoded by json."""
    try:
        record = entity_record(json.loads(line), flt)
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err})"
    except ValueError as err:  # not an entity, or invalid UTF-8
        return None, str(err)
    except (AttributeError, TypeError) as err:  # an unexpected shape
        return None, f"invalid JSON ({err})"
    if record is None:
        return None, None
    try:
        return json.dumps(record, ensure_ascii=False).encode("utf8"), None
    except UnicodeEncodeError:  # a lone surrogate (a \ud800 escape) in a text
        return None, "text that is not valid Unicode"


def parse_chunk(chunk) -> Tuple[bytes, int, int, List[str]]:
    """(JSON lines of the kept records, items seen, bad lines, bad examples)."""
    flt = _FILTER
    needle = f'"{flt.site}"'.encode()
    fast = _projection_decoder(flt.lang) if msgspec is not None else None
    encode = msgspec.json.encode if fast is not None else None
    errors = (_Unusual, ValueError, AttributeError, TypeError) if fast else ()
    out: List[bytes] = []
    lines = bad = 0
    examples: List[str] = []
    for number, raw in enumerate(chunk.data.split(b"\n"), chunk.first_line):
        if raw.startswith(b"{") and raw.endswith(b"},"):  # the usual line: no copy
            line = raw
            end = -1
        else:
            line = raw.strip()
            if line.endswith(b","):
                line = line[:-1].rstrip()
            if not line or line in (b"[", b"]"):
                continue
            end = len(line)
            if not (line.startswith(b"{") and line.endswith(b"}")):
                lines += 1
                bad += 1
                if len(examples) < MAX_REPORTED:
                    examples.append(f"line {number}: not a JSON object on one line")
                continue
        lines += 1
        if not flt.all_items and needle not in line:
            continue
        data = problem = None
        if fast is not None:
            try:
                record = _projected_record(fast(memoryview(line)[:end]), flt)
            except errors:  # json decides (and words the problem)
                data, problem = _json_line(line[:end], flt)
            else:
                if record is not None:
                    data = encode(record)
        else:
            data, problem = _json_line(line[:end], flt)
        if data is not None:
            out.append(data)
        elif problem is not None:
            bad += 1
            if len(examples) < MAX_REPORTED:
                examples.append(f"line {number}: {problem}")
    if out:
        out.append(b"")
    return b"\n".join(out), lines, bad, examples


def check_first_chunk(path):
    """on_first hook: reject a file that is not a Wikidata JSON dump."""
    def check(data: bytes) -> None:
        head = data[:4096].lstrip()
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        if not (head.startswith(b"[") or head.startswith(b"{")) or (
                b'"id"' not in head and b'"type"' not in head and head.strip() != b"["):
            raise DumpError(f"{path} is not a Wikidata JSON dump (a JSON array with one "
                            "entity per line, as latest-all.json.gz).")
    return check

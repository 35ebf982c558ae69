"""Parse Wikidata JSON dump chunks into compact entity records.

The dump (``latest-all.json.gz`` / ``.bz2``) is a JSON array with one entity
per line: ``[`` on the first line, ``]`` on the last, every entity line ending
with a comma. Lines of items without a sitelink to the wanted wiki are
skipped without being parsed (a byte search), which is what makes a pass over
the ~100M items fast; every line is still checked to look like a JSON object.
"""

import json
from typing import Any, Dict, FrozenSet, List, NamedTuple, Optional, Tuple

from .dumps import MAX_REPORTED, DumpError

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


def _claim_ids(claims: Dict[str, Any], prop: str) -> List[str]:
    ids = []
    for statement in claims.get(prop) or ():
        if not isinstance(statement, dict) or statement.get("rank") == "deprecated":
            continue
        snak = statement.get("mainsnak") or {}
        value = (snak.get("datavalue") or {}).get("value")
        if isinstance(value, dict):
            qid = value.get("id")
            if qid is None and value.get("numeric-id") is not None:
                qid = f"Q{value['numeric-id']}"
            if isinstance(qid, str) and qid.startswith("Q") and qid not in ids:
                ids.append(qid)
    return ids


def _text(values: Dict[str, Any], lang: str) -> str:
    for code in (lang, "mul"):
        value = (values.get(code) or {}).get("value") if isinstance(values, dict) else None
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
    if DISAMBIGUATION_CLASS in classes:
        return None
    if flt.include_classes and not flt.include_classes.intersection(classes):
        return None
    if flt.exclude_classes.intersection(classes):
        return None
    labels = entity.get("labels") or {}
    name = _text(labels, flt.lang)
    aliases = []
    for code in (flt.lang, "mul"):
        for source in ((labels.get(code) or {},) if isinstance(labels, dict) else ()):
            value = source.get("value")
            if isinstance(value, str):
                aliases.append(value)
        for alias in ((entity.get("aliases") or {}).get(code) or ()):
            if isinstance(alias, dict) and isinstance(alias.get("value"), str):
                aliases.append(alias["value"])
    if not name and title:  # no label in the language: the article title names it
        aliases.insert(0, title)
    seen = set()
    clean = []
    for alias in aliases:
        alias = " ".join(alias.split())
        if alias and alias not in seen:
            seen.add(alias)
            clean.append(alias)
    parents = []
    for prop in PARENT_PROPERTIES:
        for parent in (classes if prop == "P31" else _claim_ids(claims, prop)):
            if parent != qid and parent not in parents:
                parents.append(parent)
    return {"id": qid, "title": title, "sitelinks": len(sitelinks),
            "name": name or title, "description": _text(entity.get("descriptions") or {},
                                                        flt.lang),
            "aliases": clean, "parents": parents}


def parse_chunk(chunk) -> Tuple[bytes, int, int, List[str]]:
    """(JSON lines of the kept records, items seen, bad lines, bad examples)."""
    flt = _FILTER
    needle = f'"{flt.site}"'.encode()
    out: List[str] = []
    lines = bad = 0
    examples: List[str] = []
    for number, raw in enumerate(chunk.data.split(b"\n"), chunk.first_line):
        line = raw.strip()
        if line.endswith(b","):
            line = line[:-1].rstrip()
        if not line or line in (b"[", b"]"):
            continue
        lines += 1
        problem = None
        if not (line.startswith(b"{") and line.endswith(b"}")):
            problem = "not a JSON object on one line"
        elif flt.all_items or needle in line:
            try:
                record = entity_record(json.loads(line), flt)
            except (ValueError, AttributeError, TypeError) as err:
                problem = str(err) if isinstance(err, ValueError) and not isinstance(
                    err, json.JSONDecodeError) else f"invalid JSON ({err})"
            else:
                if record is not None:
                    out.append(json.dumps(record, ensure_ascii=False))
        if problem is not None:
            bad += 1
            if len(examples) < MAX_REPORTED:
                examples.append(f"line {number}: {problem}")
    data = ("\n".join(out) + "\n").encode("utf8") if out else b""
    return data, lines, bad, examples


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

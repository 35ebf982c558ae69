"""The request and answer formats: the service's own JSON (/link), REL's
(``POST /``) and NIF 2.1 Turtle for GERBIL (/nif).

Readers check everything that can be checked without the tokenizer (types,
offsets, overlaps, limits) and raise RequestError naming the field; whether a
span falls on token boundaries is checked when it is linked.
"""

import json
from typing import Any, Dict, List, Optional, Tuple

from ..corpora import text_problem
from .errors import Limits, RequestError, bad_type
from .linking import Job, LinkService, Mention, finite

# --------------------------------------------------------------------- bodies


def decode_body(body: bytes) -> str:
    """The body as text (400 naming the first byte that is not UTF-8)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(400, "body", f"body: not valid UTF-8 (byte {body[err.start]:#04x} "
                           f"at offset {err.start}).", kind="invalid_utf8") from None


def parse_json(body: bytes) -> Any:
    """The body as JSON (400 for invalid UTF-8 or malformed JSON, saying where)."""
    text = decode_body(body)
    if not text.strip():
        raise RequestError(400, "body", "body: empty; send a JSON object.", kind="invalid_json")
    try:
        return json.loads(text)
    except ValueError as err:
        where = (f" at line {err.lineno}, column {err.colno}"
                 if isinstance(err, json.JSONDecodeError) else "")
        reason = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
        raise RequestError(400, "body", f"body: malformed JSON{where} ({reason}).",
                           kind="invalid_json") from None


def check_text(text: Any, where: str, limits: Limits) -> str:
    """A text to link: a string, not too long, encodable."""
    if not isinstance(text, str):
        raise bad_type(where, "a string", text)
    if len(text) > limits.max_text_chars:
        raise RequestError(413, where, f"{where}: {len(text):,} characters; at most "
                           f"{limits.max_text_chars:,} per text.")
    problem = text_problem(text)
    if problem is not None:
        raise RequestError(422, where, f"{where} {problem}", kind="invalid_text")
    return text


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_type(where, "an integer", value)
    return value


def check_mentions(mentions: List[Mention], text: str, where: str) -> List[Mention]:
    """Offsets inside the text, non-empty, not overlapping; sorted by start."""
    for start, end, _, field in mentions:
        if not 0 <= start < end <= len(text):
            raise RequestError(422, field, f"{field}: characters {start}-{end} are not a "
                               f"non-empty span of {where} (0-{len(text)}).",
                               kind="span_out_of_range")
    ordered = sorted(mentions, key=lambda m: (m[0], m[1]))
    for before, after in zip(ordered, ordered[1:]):
        if after[0] < before[1]:
            raise RequestError(422, after[3], f"{after[3]}: characters {after[0]}-{after[1]} "
                               f"overlap {before[3]} ({before[0]}-{before[1]}); mentions "
                               "cannot overlap.", kind="overlapping_spans")
    return ordered


# ----------------------------------------------------------------------- /link


def read_link_request(payload: Any, limits: Limits) -> Tuple[List[str],
                                                              List[Optional[List[Mention]]],
                                                              bool]:
    """POST /link: (texts, mentions per text, whether it was a single "text")."""
    if not isinstance(payload, dict):
        raise bad_type("body", 'an object with "text" or "texts"', payload)
    if ("text" in payload) == ("texts" in payload):
        raise RequestError(422, "body", 'body: give either "text" (a string) or "texts" '
                           "(an array of strings).", kind="invalid")
    single = "text" in payload
    if single:
        texts = [check_text(payload["text"], "text", limits)]
        where = ["text"]
    else:
        raw = payload["texts"]
        if not isinstance(raw, list):
            raise bad_type("texts", "an array of strings", raw)
        if len(raw) > limits.max_texts:
            raise RequestError(413, "texts", f"texts: {len(raw):,} texts; at most "
                               f"{limits.max_texts:,} per request.")
        where = [f"texts[{i}]" for i in range(len(raw))]
        texts = [check_text(t, w, limits) for t, w in zip(raw, where)]
    spans = payload.get("spans")
    if spans is None:
        return texts, [None] * len(texts), single
    if not isinstance(spans, list):
        raise bad_type("spans", "an array", spans)
    if single:
        per_text: List[Any] = [spans]
        names = ["spans"]
    else:
        if len(spans) != len(texts):
            raise RequestError(422, "spans", f"spans: {len(spans)} entries for {len(texts)} "
                               "texts; give one array (or null) per text.", kind="invalid")
        per_text = spans
        names = [f"spans[{i}]" for i in range(len(spans))]
    mentions: List[Optional[List[Mention]]] = []
    for text, text_where, items, name in zip(texts, where, per_text, names):
        if items is None:
            mentions.append(None)
            continue
        if not isinstance(items, list):
            raise bad_type(name, "an array of spans (or null)", items)
        if len(items) > limits.max_spans:
            raise RequestError(413, name, f"{name}: {len(items):,} spans; at most "
                               f"{limits.max_spans:,} per text.")
        found = []
        for k, item in enumerate(items):
            field = f"{name}[{k}]"
            if not isinstance(item, dict):
                raise bad_type(field, 'an object {"start", "end", "label"}', item)
            for key in ("start", "end"):
                if key not in item:
                    raise RequestError(422, f"{field}.{key}", f"{field}.{key}: missing.",
                                       kind="invalid")
            start = _int(item["start"], f"{field}.start")
            end = _int(item["end"], f"{field}.end")
            label = item.get("label") or ""
            if not isinstance(label, str):
                raise bad_type(f"{field}.label", "a string", label)
            found.append((start, end, label, field))
        mentions.append(check_mentions(found, text, text_where))
    return texts, mentions, single


def link_record(service: LinkService, doc) -> Dict[str, Any]:
    """A linked doc as /link answers it."""
    ents = []
    for ent in doc.ents:
        kb_id = ent.kb_id_ or "NIL"
        record: Dict[str, Any] = {
            "start": ent.start_char, "end": ent.end_char, "text": ent.text,
            "label": ent.label_, "kb_id": kb_id, "score": finite(ent._.kb_score),
            "candidates": [{"kb_id": cand, "score": finite(score),
                            "name": (service.entity_info(cand) or {}).get("name", "")}
                           for cand, score in (ent._.kb_candidates or [])],
        }
        if kb_id != "NIL":
            info = service.entity_info(kb_id)
            if info:
                record["entity"] = info
        ents.append(record)
    return {"text": doc.text, "ents": ents}


# ------------------------------------------------------------------------ REL


def read_rel_request(payload: Any, limits: Limits) -> Tuple[str, Optional[List[Mention]]]:
    """REL's ``{"text": ..., "spans": [[start, length], ...]}``; empty spans: find them."""
    if not isinstance(payload, dict):
        raise bad_type("body", 'an object {"text", "spans"}', payload)
    if "text" not in payload:
        raise RequestError(422, "text", "text: missing.", kind="invalid")
    text = check_text(payload["text"], "text", limits)
    spans = payload.get("spans")
    if spans is None or spans == []:
        return text, None
    if not isinstance(spans, list):
        raise bad_type("spans", "an array of [start, length] pairs", spans)
    if len(spans) > limits.max_spans:
        raise RequestError(413, "spans", f"spans: {len(spans):,} spans; at most "
                           f"{limits.max_spans:,}.")
    found = []
    for k, pair in enumerate(spans):
        field = f"spans[{k}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise bad_type(field, "a [start, length] pair", pair)
        start = _int(pair[0], f"{field}[0]")
        length = _int(pair[1], f"{field}[1]")
        found.append((start, start + length, "", field))
    return text, check_mentions(found, text, "text")


def rel_record(service: LinkService, doc, given: bool) -> List[List[Any]]:
    """REL's answer: [start, length, mention, entity, ed_score, ner_score, tag] per
    mention. entity is the KB id ("NIL" when none), ner_score 1.0 (given spans,
    and the pipeline's ner gives no confidence), tag the label ("NULL" for given
    spans, as REL). Given spans keep their offsets even where the tokens around
    them were linked."""
    rows = []
    for ent, (start, end) in zip(doc.ents, mention_offsets(doc)):
        rows.append([start, end - start, doc.text[start:end], ent.kb_id_ or "NIL",
                     finite(ent._.kb_score) or 0.0, 1.0, "NULL" if given else ent.label_])
    return rows


def mention_offsets(doc) -> List[Tuple[int, int]]:
    """Per ent, the character offsets it was given with (its own when found)."""
    given = doc.user_data.get("mention_offsets")
    if given is not None:
        return given
    return [(ent.start_char, ent.end_char) for ent in doc.ents]


# ------------------------------------------------------------------ rendering


def dump_json(content: Any) -> bytes:
    """Compact UTF-8 JSON (no NaN: scores went through finite())."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def render_doc(service: LinkService, fmt: str, doc) -> Any:
    """A linked doc as its answer needs it, made where the doc is (the linking
    thread or process): /link's record and REL's rows as JSON bytes; for NIF the
    links [(start, end, kb_id)] that nif_annotate adds to the request's graph."""
    if fmt == "link":
        return dump_json(link_record(service, doc))
    if fmt == "rel":
        return dump_json(rel_record(service, doc, "mention_offsets" in doc.user_data))
    if fmt == "nif":
        return [(start, end, ent.kb_id_)
                for ent, (start, end) in zip(doc.ents, mention_offsets(doc))]
    raise ValueError(f"unknown answer format {fmt!r}")


# ------------------------------------------------------------------------ NIF

NIF = "http://persistence.uni-leipzig.org/nlp2rdf/ontologies/nif-core#"
ITSRDF = "http://www.w3.org/2005/11/its/rdf#"


class NifDocument:
    """A parsed NIF request: its graph, and per nif:Context its text and mentions."""

    def __init__(self, graph, contexts: List[Tuple[Any, str, Optional[List[Mention]],
                                                  Dict[Tuple[int, int], Any]]]):
        self.graph = graph
        self.contexts = contexts  # (context node, text, mentions or None, span -> node)


def read_nif(body: bytes, limits: Limits) -> NifDocument:
    """Parse a NIF 2.1 Turtle document (runs in a thread: rdflib is slow)."""
    from rdflib import RDF, Graph, Namespace

    nif = Namespace(NIF)
    text = decode_body(body)
    graph = Graph()
    try:
        graph.parse(data=text, format="turtle")
    except Exception as err:  # rdflib raises many types for bad Turtle
        reason = " ".join(str(err).split())[:300]
        raise RequestError(400, "body", f"body: not valid Turtle ({reason}).",
                           kind="invalid_turtle") from None
    contexts = sorted(set(graph.subjects(RDF.type, nif.Context)), key=str)
    if not contexts:
        raise RequestError(422, "nif:Context", "nif:Context: the document has none; send a "
                           "nif:Context with a nif:isString.", kind="invalid")
    if len(contexts) > limits.max_texts:
        raise RequestError(413, "nif:Context", f"nif:Context: {len(contexts):,} contexts; at "
                           f"most {limits.max_texts:,} per request.")
    parsed = []
    for context in contexts:
        where = f"<{context}>"
        value = graph.value(context, nif.isString)
        if value is None:
            raise RequestError(422, f"{where} nif:isString", f"{where}: no nif:isString.",
                               kind="invalid")
        ctx_text = check_text(str(value), f"{where} nif:isString", limits)
        mentions: List[Mention] = []
        nodes: Dict[Tuple[int, int], Any] = {}
        for node in set(graph.subjects(nif.referenceContext, context)):
            if node == context:
                continue
            field = f"<{node}>"
            begin, end = graph.value(node, nif.beginIndex), graph.value(node, nif.endIndex)
            if begin is None or end is None:
                continue  # not a mention (e.g. a nif:Sentence without offsets)
            try:
                begin_i, end_i = int(begin.toPython()), int(end.toPython())
            except (TypeError, ValueError):
                raise RequestError(422, f"{field} nif:beginIndex", f"{field}: nif:beginIndex "
                                   "and nif:endIndex must be integers.", kind="wrong_type") \
                    from None
            mentions.append((begin_i, end_i, "", field))
            nodes[(begin_i, end_i)] = node
        if len(mentions) > limits.max_spans:
            raise RequestError(413, where, f"{where}: {len(mentions):,} mentions; at most "
                               f"{limits.max_spans:,}.")
        checked = check_mentions(mentions, ctx_text, where) if mentions else None
        parsed.append((context, ctx_text, checked, nodes))
    return NifDocument(graph, parsed)


def nif_annotate(service: LinkService, document: NifDocument, index: int,
                 links: List[Tuple[int, int, str]]) -> int:
    """Add a context's links (render_doc's [(start, end, kb_id)]) to the graph:
    itsrdf:taIdentRef on each given mention (D2KB), or new nif:Phrase mentions
    (A2KB). NIL mentions get no taIdentRef. Returns how many links were added."""
    from rdflib import RDF, XSD, Literal, Namespace, URIRef

    nif, itsrdf = Namespace(NIF), Namespace(ITSRDF)
    graph = document.graph
    context, text, mentions, nodes = document.contexts[index]
    base = str(context).split("#", 1)[0]
    added = 0
    for start, end, kb_id in links:
        node = nodes.get((start, end))
        if node is None:
            if mentions is not None:
                continue
            node = URIRef(f"{base}#char={start},{end}")
            for kind in (nif.String, nif.RFC5147String, nif.Phrase):
                graph.add((node, RDF.type, kind))
            graph.add((node, nif.anchorOf, Literal(text[start:end], datatype=XSD.string)))
            graph.add((node, nif.beginIndex, Literal(start, datatype=XSD.nonNegativeInteger)))
            graph.add((node, nif.endIndex, Literal(end, datatype=XSD.nonNegativeInteger)))
            graph.add((node, nif.referenceContext, context))
        if kb_id:
            graph.add((node, itsrdf.taIdentRef, URIRef(service.entity_iri(kb_id))))
            added += 1
    return added


def nif_job_texts(document: NifDocument) -> Tuple[List[str], List[Optional[List[Mention]]]]:
    return ([text for _, text, _, _ in document.contexts],
            [mentions for _, _, mentions, _ in document.contexts])


def write_nif(document: NifDocument) -> bytes:
    graph = document.graph
    graph.bind("nif", NIF)
    graph.bind("itsrdf", ITSRDF)
    return graph.serialize(format="turtle", encoding="utf-8")


__all__ = ["Job", "decode_body", "dump_json", "link_record", "nif_annotate", "parse_json",
           "read_link_request", "read_nif", "read_rel_request", "rel_record", "render_doc",
           "write_nif"]

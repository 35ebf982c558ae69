"""`entity-linker serve` over HTTP: every endpoint, every error class, concurrency,
slow and vanishing clients. One server for the module (conftest.py)."""

import asyncio
import json
import re
import socket
import threading
import time

import httpx
import pytest
from rdflib import Graph, Namespace, URIRef

PARIS, FRANCE = "2988507", "3017382"
NIF = Namespace("http://persistence.uni-leipzig.org/nlp2rdf/ontologies/nif-core#")
ITSRDF = Namespace("http://www.w3.org/2005/11/its/rdf#")
SENTENCE = "Paris is the capital of France."


def error_of(response, status, field):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["field"] == field, body
    assert body["error"]
    return body["error"]


# ------------------------------------------------------------------- health


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["finds_mentions"] is True
    assert health["kb"]["entities"] > 100_000
    assert health["limits"]["max_texts"] == 40


# --------------------------------------------------------------------- /link


def test_link_one_text(client):
    response = client.post("/link", json={"text": SENTENCE})
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["text"] == SENTENCE
    by_text = {ent["text"]: ent for ent in record["ents"]}
    paris = by_text["Paris"]
    assert (paris["start"], paris["end"], paris["kb_id"]) == (0, 5, PARIS)
    assert paris["label"]
    assert 0 < paris["score"] <= 1
    assert 1 <= len(paris["candidates"]) <= 3
    assert paris["candidates"][0] == {"kb_id": PARIS, "score": paris["score"], "name": "Paris"}
    entity = paris["entity"]
    assert entity["name"] == "Paris"
    assert entity["country"] == "France" and entity["country_code"] == "FR"
    assert entity["admin1"]
    assert entity["latitude"] == pytest.approx(48.85, abs=0.1)
    assert entity["longitude"] == pytest.approx(2.35, abs=0.1)
    assert by_text["France"]["kb_id"] == FRANCE


def test_link_many_texts_and_given_mentions(client):
    texts = ["I flew to Springfield, Illinois.", SENTENCE, "Nothing to see here."]
    spans = [[{"start": 10, "end": 21, "label": "GPE"}], None, []]
    response = client.post("/link", json={"texts": texts, "spans": spans})
    assert response.status_code == 200, response.text
    docs = response.json()["docs"]
    assert [doc["text"] for doc in docs] == texts
    # Given mentions only: Springfield, not Illinois; the given label is kept.
    (springfield,) = docs[0]["ents"]
    assert (springfield["start"], springfield["end"], springfield["label"]) == (10, 21, "GPE")
    assert springfield["kb_id"] != "NIL"
    assert springfield["entity"]["country_code"] == "US"
    assert {ent["kb_id"] for ent in docs[1]["ents"]} >= {PARIS, FRANCE}  # null: found
    assert docs[2]["ents"] == []  # []: no mentions given, none linked


def test_link_given_mention_without_label(client):
    response = client.post("/link", json={"text": SENTENCE,
                                          "spans": [{"start": 24, "end": 30}]})
    assert response.status_code == 200, response.text
    (france,) = response.json()["ents"]
    assert france["kb_id"] == FRANCE and france["label"] == "ENT"


def test_link_empty_text_and_unicode(client):
    response = client.post("/link", json={"texts": ["", "Zürich liegt in der Schweiz. 🙂"]})
    assert response.status_code == 200
    docs = response.json()["docs"]
    assert docs[0] == {"text": "", "ents": []}
    assert docs[1]["text"] == "Zürich liegt in der Schweiz. 🙂"


# ------------------------------------------------------- errors (request body)


def test_malformed_json(client):
    message = error_of(client.post("/link", content=b'{"text": "abc'), 400, "body")
    assert "malformed JSON" in message and "line 1" in message


def test_empty_body(client):
    error_of(client.post("/link", content=b""), 400, "body")


def test_invalid_utf8(client):
    message = error_of(client.post("/link", content=b'{"text": "caf\xe9"}'), 400, "body")
    assert "UTF-8" in message and "0xe9" in message


def test_lone_surrogate(client):
    body = b'{"texts": ["fine", "bad \\ud800 text"]}'
    assert "surrogate" in error_of(client.post("/link", content=body), 422, "texts[1]")


@pytest.mark.parametrize("payload,field", [
    ([1, 2], "body"),
    ("text", "body"),
    ({}, "body"),
    ({"text": "a", "texts": ["b"]}, "body"),
    ({"text": 5}, "text"),
    ({"text": None}, "text"),
    ({"texts": "abc"}, "texts"),
    ({"texts": ["ok", 3]}, "texts[1]"),
    ({"text": "Paris", "spans": {"start": 0}}, "spans"),
    ({"text": "Paris", "spans": [[0, 5]]}, "spans[0]"),
    ({"text": "Paris", "spans": [{"start": "0", "end": 5}]}, "spans[0].start"),
    ({"text": "Paris", "spans": [{"start": 0, "end": 5.0}]}, "spans[0].end"),
    ({"text": "Paris", "spans": [{"start": True, "end": 5}]}, "spans[0].start"),
    ({"text": "Paris", "spans": [{"start": 0}]}, "spans[0].end"),
    ({"text": "Paris", "spans": [{"start": 0, "end": 5, "label": 7}]}, "spans[0].label"),
    ({"texts": ["a", "b"], "spans": [None]}, "spans"),
    ({"texts": ["Paris"], "spans": ["x"]}, "spans[0]"),
])
def test_wrong_types(client, payload, field):
    error_of(client.post("/link", json=payload), 422, field)


@pytest.mark.parametrize("span,field", [
    ({"start": 0, "end": 99}, "spans[0]"),
    ({"start": -1, "end": 3}, "spans[0]"),
    ({"start": 3, "end": 3}, "spans[0]"),
])
def test_offsets_out_of_range(client, span, field):
    message = error_of(client.post("/link", json={"text": SENTENCE, "spans": [span]}), 422,
                       field)
    assert "0-31" in message


def test_span_not_on_token_boundaries(client):
    spans = [{"start": 0, "end": 5}, {"start": 25, "end": 30}]
    message = error_of(client.post("/link", json={"text": SENTENCE, "spans": spans}), 422,
                       "spans[1]")
    assert "'rance'" in message and "24-30" in message


def test_overlapping_spans(client):
    spans = [{"start": 0, "end": 5}, {"start": 0, "end": 8}]
    message = error_of(client.post("/link", json={"text": SENTENCE, "spans": spans}), 422,
                       "spans[1]")
    assert "overlap" in message


def test_error_in_one_text_refuses_the_request(client):
    payload = {"texts": [SENTENCE, SENTENCE], "spans": [None, [{"start": 1, "end": 5}]]}
    error_of(client.post("/link", json=payload), 422, "spans[1][0]")


# ------------------------------------------------------------------ limits


def test_body_too_large(client):
    message = error_of(client.post("/link", json={"text": "x" * 250_000}), 413, "body")
    assert "200,000" in message


def test_body_too_large_without_content_length(client):
    def chunks():
        for _ in range(30):
            yield b"x" * 10_000

    error_of(client.post("/link", content=chunks()), 413, "body")


def test_text_too_long(client):
    message = error_of(client.post("/link", json={"texts": ["ok", "y" * 5001]}), 413,
                       "texts[1]")
    assert "5,000" in message


def test_too_many_texts(client):
    error_of(client.post("/link", json={"texts": ["a"] * 41}), 413, "texts")


def test_too_many_spans(client):
    spans = [{"start": i, "end": i + 1} for i in range(21)]
    error_of(client.post("/link", json={"text": "z" * 30, "spans": spans}), 413, "spans")


def test_bad_content_length(server):
    request = (b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{\"te")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer  # 4 of 5 bytes: the body timed out


def read_answer(sock) -> bytes:
    """One HTTP answer from a raw socket: its head and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_unknown_route_and_method(client):
    error_of(client.get("/nothing"), 404, "path")
    error_of(client.get("/link"), 405, "path")


# ----------------------------------------------------------------------- REL


def test_rel_end_to_end(client):
    response = client.post("/", json={"text": SENTENCE, "spans": []})
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [0, 5, "Paris", PARIS] == rows[0][:4]
    for start, length, mention, entity, ed_score, ner_score, tag in rows:
        assert SENTENCE[start:start + length] == mention
        assert isinstance(entity, str) and entity
        assert isinstance(ed_score, float) and ner_score == 1.0 and tag


def test_rel_given_spans(client):
    response = client.post("/", json={"text": SENTENCE, "spans": [[24, 6]]})
    assert response.status_code == 200, response.text
    assert response.json() == [[24, 6, "France", FRANCE, pytest.approx(1.0, abs=0.5), 1.0,
                                "NULL"]]


def test_rel_span_inside_a_token_keeps_its_offsets(client):
    # "Franc" is not a token: the token around it is linked, the given span kept.
    rows = client.post("/", json={"text": SENTENCE, "spans": [[24, 5]]}).json()
    assert rows[0][:3] == [24, 5, "Franc"]


@pytest.mark.parametrize("payload,status,field", [
    ({"spans": []}, 422, "text"),
    ({"text": SENTENCE, "spans": [[0]]}, 422, "spans[0]"),
    ({"text": SENTENCE, "spans": [[0, "5"]]}, 422, "spans[0][1]"),
    ({"text": SENTENCE, "spans": [[30, 5]]}, 422, "spans[0]"),
    ({"text": SENTENCE, "spans": "0,5"}, 422, "spans"),
])
def test_rel_errors(client, payload, status, field):
    error_of(client.post("/", json=payload), status, field)


# ----------------------------------------------------------------------- NIF

CONTEXT = "http://example.org/doc1#char=0,31"
NIF_PREFIXES = """@prefix nif: <http://persistence.uni-leipzig.org/nlp2rdf/ontologies/nif-core#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""
NIF_CONTEXT = f"""<{CONTEXT}> a nif:String, nif:Context, nif:RFC5147String ;
    nif:isString "{SENTENCE}"^^xsd:string ;
    nif:beginIndex "0"^^xsd:nonNegativeInteger ; nif:endIndex "31"^^xsd:nonNegativeInteger .
"""
NIF_FRANCE = f"""<http://example.org/doc1#char=24,30> a nif:String, nif:RFC5147String, nif:Phrase ;
    nif:anchorOf "France"^^xsd:string ;
    nif:beginIndex "24"^^xsd:nonNegativeInteger ; nif:endIndex "30"^^xsd:nonNegativeInteger ;
    nif:referenceContext <{CONTEXT}> .
"""


def post_nif(client, turtle: str):
    return client.post("/nif", content=turtle.encode("utf-8"),
                       headers={"Content-Type": "text/turtle"})


def links_of(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=response.text, format="turtle")
    return graph, {(int(graph.value(m, NIF.beginIndex)), int(graph.value(m, NIF.endIndex))):
                   str(ref) for m, ref in graph.subject_objects(ITSRDF.taIdentRef)}


def test_nif_a2kb(client):
    graph, links = links_of(post_nif(client, NIF_PREFIXES + NIF_CONTEXT))
    assert links[(0, 5)] == f"http://sws.geonames.org/{PARIS}/"
    assert links[(24, 30)] == f"http://sws.geonames.org/{FRANCE}/"
    mention = URIRef("http://example.org/doc1#char=0,5")
    assert (mention, NIF.referenceContext, URIRef(CONTEXT)) in graph
    assert str(graph.value(mention, NIF.anchorOf)) == "Paris"


def test_nif_d2kb(client):
    graph, links = links_of(post_nif(client, NIF_PREFIXES + NIF_CONTEXT + NIF_FRANCE))
    assert links == {(24, 30): f"http://sws.geonames.org/{FRANCE}/"}  # not Paris
    assert str(graph.value(URIRef(CONTEXT), NIF.isString)) == SENTENCE


def test_nif_errors(client):
    assert post_nif(client, "this is not <turtle").status_code == 400
    assert post_nif(client, NIF_PREFIXES + "<http://x/a> a nif:Phrase .").status_code == 422
    bad_offsets = NIF_FRANCE.replace('"30"', '"99"')
    response = post_nif(client, NIF_PREFIXES + NIF_CONTEXT + bad_offsets)
    assert response.status_code == 422
    assert "char=24,30" in response.json()["field"]
    no_string = NIF_CONTEXT.replace("nif:isString", "nif:anchorOf")
    assert post_nif(client, NIF_PREFIXES + no_string).status_code == 422


# ------------------------------------------------------------------------ KB


def test_kb_entity(client):
    response = client.get(f"/kb/entity/{PARIS}")
    assert response.status_code == 200
    entity = response.json()
    assert entity["id"] == PARIS and entity["name"] == "Paris"
    assert entity["freq"] > 0
    assert entity["metadata"]["country"] == "France"
    assert {"id": FRANCE, "name": "France"} in entity["parents"]
    error_of(client.get("/kb/entity/no-such-id"), 404, "id")


def test_kb_alias(client):
    answer = client.get("/kb/alias/Paris").json()
    assert answer["alias"] == "Paris"
    priors = [c["prior"] for c in answer["candidates"]]
    assert answer["candidates"][0]["id"] == PARIS and priors == sorted(priors, reverse=True)
    assert all(0 < p <= 1 for p in priors)
    assert "normalized" in answer
    assert client.get("/kb/alias/Xqzzyq%20Nowhere").json()["candidates"] == []


# ----------------------------------------------------- concurrency, clients


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_concurrent_requests_are_batched_and_answered_correctly(server, client):
    places = ["Paris", "Berlin", "Madrid", "Rome", "Lisbon", "Dublin", "Chicago", "Boston"]
    texts = [f"We live in {places[i % 8]}, a city." + " Really." * (i // 8) for i in range(32)]
    alone = [client.post("/link", json={"text": text}).json() for text in texts]
    assert all(record["ents"] for record in alone)
    before = client.get("/metrics").text

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            return await asyncio.gather(*(http.post("/link", json={"text": t})
                                          for t in texts))

    responses = asyncio.run(run())
    for text, response, expected in zip(texts, responses, alone):
        assert response.status_code == 200
        record = response.json()
        assert record["text"] == text
        assert same_links(record, expected)  # batched or alone, the same links
    after = client.get("/metrics").text
    batches = (metric(after, "entity_linker_batch_docs_count")
               - metric(before, "entity_linker_batch_docs_count"))
    docs = metric(after, "entity_linker_docs_linked_total") - metric(
        before, "entity_linker_docs_linked_total")
    assert docs == 32
    assert batches < 32, "no batch linked more than one doc"


def same_links(a, b) -> bool:
    def links(record):
        return [(e["start"], e["end"], e["label"], e["kb_id"],
                 [c["kb_id"] for c in e["candidates"]]) for e in record["ents"]]

    scores = [(x["score"], y["score"]) for x, y in zip(a["ents"], b["ents"])]
    return links(a) == links(b) and all(x == pytest.approx(y, abs=1e-4) for x, y in scores)


def test_slow_client_does_not_block_others(server, client):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"text\": ")
        started = time.monotonic()
        for _ in range(5):
            assert client.post("/link", json={"text": SENTENCE}).status_code == 200
        assert time.monotonic() - started < 1.0
        answer = read_answer(slow)  # the body never comes: 408 after --body-timeout
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"field":"body"' in answer


def test_disconnecting_clients(server, client):
    body = json.dumps({"texts": [SENTENCE] * 40}).encode()
    for _ in range(5):  # clients that send a request and leave at once
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
    for junk in (b"\x00\xff garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /link HTTP"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(junk)
    response = client.post("/link", json={"text": SENTENCE})
    assert response.status_code == 200 and response.json()["ents"]
    assert client.get("/health").json()["status"] == "ok"


def test_a_client_that_left_while_queued_is_not_linked(server, client):
    # Seconds of linking (within the module server's body and text limits).
    long_texts = ["We live in Paris, a city in France. " * 90] * 35
    errors = re.compile(r'entity_linker_errors_total\{pid="\d+",kind="client_gone"\} (\d+)')

    def gone_count() -> int:
        found = errors.search(client.get("/metrics").text)
        return int(found.group(1)) if found else 0

    def docs_linked() -> float:
        return metric(client.get("/metrics").text, "entity_linker_docs_linked_total")

    # Earlier tests on this module's server may still be linking (a timed-out
    # request's batch runs to its end): start from a quiet server.
    before_docs, deadline = docs_linked(), time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = docs_linked()
        if now == before_docs:
            break
        before_docs = now
    before_gone = gone_count()
    with httpx.Client(base_url=server.url, timeout=60) as other:
        answer = {}
        busy = threading.Thread(target=lambda: answer.setdefault(
            "r", other.post("/link", json={"texts": long_texts})))
        busy.start()
        time.sleep(0.2)  # the long batch is being linked
        body = json.dumps({"texts": [SENTENCE] * 7}).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            time.sleep(0.1)  # queued behind the long batch
        busy.join(60)
    assert answer["r"].status_code == 200
    deadline = time.monotonic() + 10
    while gone_count() == before_gone and time.monotonic() < deadline:
        time.sleep(0.05)
    # At least this client (earlier tests' half-sent requests may still be
    # counted as they time out on the module's server).
    assert gone_count() >= before_gone + 1
    # The 7 texts of the client that left were skipped: only the 35 were linked.
    assert docs_linked() - before_docs == 35


def test_metrics(client):
    client.post("/link", json={"text": SENTENCE})
    client.post("/link", content=b"{")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, "entity_linker_requests_total") > 0
    assert re.search(r'entity_linker_requests_total\{pid="\d+",endpoint="/link",method="POST",'
                     r'status="200"\} \d+', text)
    assert 'endpoint="/link",method="POST",status="400"' in text
    assert 'endpoint="/kb/entity/{id}"' in text
    assert re.search(r'entity_linker_request_duration_seconds_bucket\{pid="\d+",'
                     r'endpoint="/link",le="\+Inf"\} \d+', text)
    assert "entity_linker_batch_docs_bucket" in text
    assert re.search(r'entity_linker_errors_total\{pid="\d+",kind="invalid_json"\} \d+', text)
    assert metric(text, "entity_linker_resident_memory_bytes") > 0
    for line in text.splitlines():  # the exposition format: comments or NAME{...} VALUE
        assert line.startswith("# ") or re.fullmatch(
            r'[a-z_]+\{(?:[a-z_0-9]+="[^"]*",?)*\} [0-9.e+-]+', line), line

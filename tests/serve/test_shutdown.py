"""A server with a short request timeout: a request over it gets 503; on SIGTERM
the request in flight is answered before the server exits."""

import signal
import threading
import time

import httpx
import pytest

SENTENCES = "We live in Paris, a city in France. " * 30  # ~1,000 characters


@pytest.fixture(scope="module")
def slow_server(start_server):
    running = start_server("--timeout", "2.5", "--max-texts", "200")
    yield running
    running.stop()


def test_request_timeout(slow_server):
    texts = [SENTENCES] * 200  # about five seconds of linking (on an idle machine)
    response = httpx.post(f"{slow_server.url}/link", json={"texts": texts}, timeout=60)
    assert response.status_code == 503, response.text[:300]
    assert response.json()["field"] == "service"
    assert "timeout" in response.json()["error"]
    # The server answers again once the batch it had started is done.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        small = httpx.post(f"{slow_server.url}/link", json={"text": "Paris."}, timeout=60)
        if small.status_code == 200:
            break
    assert small.status_code == 200


def test_sigterm_answers_the_request_in_flight(slow_server):
    texts = [SENTENCES] * 20  # about half a second of linking (the timeout is 2.5 s)
    answer = {}

    def request():
        answer["response"] = httpx.post(f"{slow_server.url}/link", json={"texts": texts},
                                        timeout=60)

    thread = threading.Thread(target=request)
    thread.start()
    time.sleep(0.15)  # the request is in flight
    slow_server.process.send_signal(signal.SIGTERM)
    thread.join(60)
    response = answer["response"]
    assert response.status_code == 200, response.text
    docs = response.json()["docs"]
    assert len(docs) == 20 and all(doc["ents"] for doc in docs)
    code = slow_server.process.wait(60)
    assert code in (0, -signal.SIGTERM)
    assert ": stopped;" in slow_server.output()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{slow_server.url}/health", timeout=2)

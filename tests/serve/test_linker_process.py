"""The linking child process (``--linker-process``): it dies -> 503 for the
requests it was linking, then it is started again and the server answers;
SIGTERM and Ctrl-C finish the request in flight and stop the child too; a
child that cannot start fails its requests with 503 (never a hang) and, after
a few tries, stops the worker."""

import os
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from entity_linker.serve.backends import MAX_FAILED_STARTS, ProcessBackend
from entity_linker.serve.linking import Job

SENTENCES = "We live in Paris, a city in France. " * 30  # ~1,000 characters
PARIS = "2988507"


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts: it runs no more)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def linker_of(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()["linker"]


def in_flight(url: str, texts) -> tuple:
    """A /link request on a thread: (thread, dict that gets the response)."""
    answer = {}

    def request():
        answer["response"] = httpx.post(f"{url}/link", json={"texts": texts}, timeout=120)

    thread = threading.Thread(target=request)
    thread.start()
    return thread, answer


@pytest.fixture(scope="module")
def server(start_server):
    running = start_server("--linker-process", "--max-texts", "200")
    yield running
    running.stop()


def test_the_child_links(server):
    info = linker_of(server.url)
    assert info["mode"] == "process" and info["status"] == "ok"
    worker = httpx.get(f"{server.url}/health", timeout=10).json()["pid"]
    assert info["pid"] not in (None, worker)
    response = httpx.post(f"{server.url}/link", json={"text": "Paris is in France."},
                          timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["ents"][0]["kb_id"] == PARIS


def test_a_child_killed_mid_batch_gives_503_then_a_new_child_answers(server):
    first = linker_of(server.url)
    thread, answer = in_flight(server.url, [SENTENCES] * 60)  # seconds of linking
    time.sleep(0.5)  # the batch is in the child
    os.kill(first["pid"], signal.SIGKILL)
    thread.join(120)
    response = answer["response"]
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["field"] == "service"
    assert "linking process" in response.json()["error"]
    # A new child, and answers again (the restart began right after the death).
    small = httpx.post(f"{server.url}/link", json={"text": "Paris is in France."}, timeout=60)
    assert small.status_code == 200, small.text
    assert small.json()["ents"][0]["kb_id"] == PARIS
    second = linker_of(server.url)
    assert second["pid"] != first["pid"] and second["restarts"] == first["restarts"] + 1
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    restarts = re.search(r'entity_linker_linker_restarts_total\{pid="\d+"\} (\d+)', metrics)
    assert restarts and int(restarts.group(1)) == second["restarts"]
    assert "linker_unavailable" in metrics  # the 503 is counted by kind


def test_a_child_killed_while_idle_is_replaced_before_the_next_batch(server):
    first = linker_of(server.url)
    os.kill(first["pid"], signal.SIGKILL)
    assert wait_until(lambda: gone(first["pid"]))
    response = httpx.post(f"{server.url}/", json={"text": "Paris is in France.", "spans": []},
                          timeout=60)
    assert response.status_code == 200, response.text  # no request is lost to it
    assert response.json()[0][3] == PARIS
    assert linker_of(server.url)["pid"] != first["pid"]


def test_errors_from_the_child_keep_their_status_and_field(server):
    # A span inside a token is found out by the tokenizer, in the child.
    response = httpx.post(f"{server.url}/link", json={"texts": ["Paris is nice.", "Rome."],
                                                      "spans": [None, [{"start": 1,
                                                                        "end": 3}]]},
                          timeout=30)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "spans[1][0]"


def test_sigterm_finishes_the_request_in_flight_and_stops_the_child(server):
    child = linker_of(server.url)["pid"]
    thread, answer = in_flight(server.url, [SENTENCES] * 20)
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    thread.join(120)
    response = answer["response"]
    assert response.status_code == 200, response.text
    assert len(response.json()["docs"]) == 20
    assert server.process.wait(60) in (0, -signal.SIGTERM)
    assert ": stopped;" in server.output()
    assert wait_until(lambda: gone(child), 15), "the linking process outlived the server"


def test_ctrl_c_reaches_the_child_too_and_the_request_in_flight_is_answered(start_server):
    server = start_server("--linker-process", "--max-texts", "200", new_session=True)
    try:
        child = linker_of(server.url)["pid"]
        thread, answer = in_flight(server.url, [SENTENCES] * 20)
        time.sleep(0.3)
        os.killpg(server.process.pid, signal.SIGINT)  # as a terminal's Ctrl-C
        thread.join(120)
        response = answer["response"]
        assert response.status_code == 200, response.text
        assert len(response.json()["docs"]) == 20
        assert server.process.wait(60) in (0, -signal.SIGINT, -signal.SIGTERM)
        assert wait_until(lambda: gone(child), 15)
    finally:
        server.stop()


def test_thread_mode_has_no_child(start_server):
    server = start_server("--no-linker-process")
    try:
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        assert health["linker"] == {"mode": "thread", "pid": health["pid"]}
        response = httpx.post(f"{server.url}/link", json={"text": "Paris."}, timeout=30)
        assert response.status_code == 200 and response.json()["ents"][0]["kb_id"] == PARIS
    finally:
        assert server.stop() in (0, -signal.SIGTERM)


# --------------------------------------------------- a child that cannot start


def test_a_child_that_cannot_start_gives_503s_then_stops_the_worker(monkeypatch, tmp_path):
    # The children start from the temporary folder (not the source tree).
    monkeypatch.chdir(tempfile.gettempdir())
    stopped = []
    backend = ProcessBackend(str(tmp_path / "no-pipeline"),
                             on_exit=lambda: stopped.append(True))
    with pytest.raises(RuntimeError, match="could not load the pipeline"):
        backend.start()
    job = Job(["Paris."], [None])
    for attempt in range(1, MAX_FAILED_STARTS + 2):
        [(same, result)] = backend.run([job])
        assert same is job
        assert result.status == 503 and result.field == "service", result.message
        assert stopped == ([True] if attempt >= MAX_FAILED_STARTS - 1 else [])
    assert backend.info()["status"] == "stopped"
    backend.close()

"""A real `entity-linker serve` process for the tests of a module.

The server runs from the temporary folder (cwd=tempfile.gettempdir()): from the
repository root, ``python -m entity_linker`` would import the uncompiled source
tree instead of the installed package.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, *options: str, startup_timeout: float = 120.0,
                 new_session: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkdtemp(prefix="el-serve-")) / "server.log"
        self._final_output = None  # the log's text once stopped (its folder is removed)
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entity_linker", "serve", "--port", str(self.port),
             *options],
            cwd=tempfile.gettempdir(), stdout=self._log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            # Its own process group, for a test to send it Ctrl-C's SIGINT (the whole
            # group gets it, the linking child too) without reaching pytest.
            start_new_session=new_session,
        )
        deadline = time.monotonic() + startup_timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n"
                                   f"{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        if self._final_output is not None:
            return self._final_output
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60.0) -> int:
        self.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log_file.close()
        if self._final_output is None:
            self._final_output = self.log.read_text(errors="replace")
            shutil.rmtree(self.log.parent, ignore_errors=True)
        return code


# Small limits, so that the limit tests send small requests.
TEST_OPTIONS = ("--max-body-bytes", "200000", "--max-text-chars", "5000", "--max-texts", "40",
                "--max-spans", "20", "--body-timeout", "1.5")


@pytest.fixture(scope="session")
def start_server():
    """Server itself, for modules that need a server with other options (test modules
    cannot import conftest under --import-mode=importlib)."""
    return Server


@pytest.fixture(scope="module", params=["--linker-process", "--no-linker-process"])
def server(request):
    """One server per test module and linking mode (a linking child process, or a
    thread of the worker), stopped (SIGTERM) at the end; it must shut down cleanly
    (its lifespan shutdown, which drains the batcher, says "stopped")."""
    running = Server(*TEST_OPTIONS, request.param)
    yield running
    code = running.stop()
    # uvicorn re-raises SIGTERM once it has shut down: the exit status is -15.
    assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{running.output()}"
    assert ": stopped;" in running.output(), running.output()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http

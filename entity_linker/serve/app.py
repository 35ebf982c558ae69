"""The linking service's routes (``entity-linker serve``).

Built on Starlette and served by uvicorn: an ASGI toolkit small enough to read
(routing, requests, responses, lifespan) and well kept. FastAPI would add
pydantic models and OpenAPI generation on top of Starlette, but the formats
here are not ours to model: REL's arrays and NIF's Turtle are read by hand
anyway, and the errors must name the exact field at fault in our own words,
so FastAPI would be a second validation layer to work around, and a heavy
dependency for a spaCy package.

One process serves with one pipeline, loaded once (its KB memory-mapped);
``--workers N`` starts N such processes on one port. Within a process, the
requests are linked together in batches (batcher.py), on one linking thread
of the worker or in a linking child process of its own (``--linker-process``:
HTTP and linking run on two cores instead of sharing one GIL) (backends.py);
either way the event loop stays free to read and answer other
requests, and the answers come back rendered (JSON bytes) from the linking side.
"""

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any, Dict, List, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route

from .backends import ProcessBackend, ThreadBackend
from .batcher import Batcher
from .errors import Limits, RequestError
from .formats import (
    dump_json,
    nif_annotate,
    nif_job_texts,
    parse_json,
    read_link_request,
    read_nif,
    read_rel_request,
    write_nif,
)
from .linking import Job, LinkService
from .metrics import Metrics

CONFIG_ENV = "ENTITY_LINKER_SERVE_CONFIG"
SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005
CLIENT_GONE = 499  # nginx's status for a client that closed the connection first
LINK_PATHS = ("/link", "/", "/nif")
ARRIVING = "entity_linker.arriving"  # scope key: a linking request not yet queued
WATCH_AFTER = 0.05  # seconds a request waits for its links before its client is watched


def json_response(content: Any, status: int = 200) -> Response:
    """A JSON answer (compact, UTF-8)."""
    return json_bytes_response(dump_json(content), status)


def json_bytes_response(body: bytes, status: int = 200) -> Response:
    """An answer already rendered as JSON (by the linking thread or process)."""
    return Response(body, status_code=status, media_type="application/json")


def error_response(err: RequestError) -> Response:
    headers = {"Retry-After": "1"} if err.status == 503 else None
    response = json_response(err.to_dict(), err.status)
    if headers:
        response.headers.update(headers)
    return response


class Service:
    """What the routes share: the pipeline (for KB lookups), where batches are
    linked (backends.py), the limits, the batcher, the metrics."""

    def __init__(self, links: LinkService, limits: Limits, max_batch: int = 64,
                 max_wait: float = 0.005, backend: Any = None):
        self.links = links
        self.limits = limits
        self.backend = backend if backend is not None else ThreadBackend(links)
        self.metrics = Metrics()
        self.arriving = 0  # linking requests begun and not yet queued (batcher.py)
        self.batcher = Batcher(self.backend.run, max_docs=max_batch, max_wait=max_wait,
                               max_queue_docs=limits.max_queue_docs,
                               on_batch=self.metrics.batch, arriving=lambda: self.arriving,
                               max_in_flight=getattr(self.backend, "max_in_flight", 1))
        self.closing = False

    # ------------------------------------------------------------------ helpers

    async def read_body(self, scope, receive) -> bytes:
        """The request's body, within the size limit (413) and the body timeout (408)."""
        limit = self.limits.max_body_bytes
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise RequestError(400, "Content-Length", f"Content-Length: {length!r} is "
                                   "not a byte count.")
            if int(length) > limit:
                raise RequestError(413, "body", f"body: {int(length):,} bytes; at most "
                                   f"{limit:,}.")
        # The timeout cancels this task (as asyncio.timeout does), instead of
        # running the read in a task of its own under wait_for: a task per request
        # is a good part of the event loop's time under load.
        task = asyncio.current_task()
        expired = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.limits.body_timeout, expire)
        chunks, size = [], 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise RequestError(413, "body", f"body: more than {limit:,} bytes.")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        except asyncio.CancelledError:
            if not expired:
                raise
            if hasattr(task, "uncancel"):  # Python 3.11+: this cancellation is handled
                task.uncancel()
            raise RequestError(408, "body", "body: not received within "
                               f"{self.limits.body_timeout:g} s.") from None
        finally:
            timer.cancel()

    async def link(self, scope, receive, job: Job) -> Any:
        """Queue a job, and wait for it, for the client to leave, or for the timeout
        (whichever comes first resolves the job's future; the batcher skips a job
        whose future is done)."""
        self.arrived(scope)
        future = self.batcher.enqueue(job)
        loop = asyncio.get_running_loop()
        watching: List[asyncio.Task] = []

        def watch() -> None:
            task = loop.create_task(_client_gone(receive))
            task.add_done_callback(lambda task: _fail(future, _gone_error(task)))
            watching.append(task)

        # Most answers come before WATCH_AFTER: they need no watcher task (a task
        # per request is a good part of the event loop's time under load). A
        # client that leaves earlier is seen then; its job, if still waiting, is
        # skipped.
        watcher = loop.call_later(WATCH_AFTER, watch)
        timer = loop.call_later(self.limits.request_timeout, self.timed_out, future)
        try:
            return await future  # the results, or raises the job's RequestError
        finally:
            timer.cancel()
            watcher.cancel()
            for task in watching:
                task.cancel()
            if not future.done() or future.cancelled() or future.exception() is not None:
                job.abandoned = True

    def timed_out(self, future: "asyncio.Future") -> None:
        _fail(future, RequestError(503, "service", "Linking took longer than the request "
                                   f"timeout ({self.limits.request_timeout:g} s).",
                                   kind="timeout"))

    async def link_json(self, scope, receive) -> bytes:
        """POST /link: the service's own JSON; the answer's body."""
        payload = parse_json(await self.read_body(scope, receive))
        texts, mentions, single = read_link_request(payload, self.limits)
        records = await self.link(scope, receive, Job(texts, mentions, fmt="link"))
        # The records come as JSON bytes: the answer is only joined here.
        return records[0] if single else b'{"docs":[' + b",".join(records) + b"]}"

    async def link_rel(self, scope, receive) -> bytes:
        """POST /: REL's API; the answer's body."""
        payload = parse_json(await self.read_body(scope, receive))
        text, mentions = read_rel_request(payload, self.limits)
        rows = await self.link(scope, receive,
                               Job([text], [mentions], fmt="rel", alignment="expand"))
        return rows[0]

    async def answer_json(self, handler, scope, receive, send) -> None:
        """Run a JSON linking handler as a bare ASGI app: POST /link and POST / skip
        Starlette's routing and middleware layers (the hot path), with the same
        answers and errors as the Starlette routes."""
        headers = [(b"content-type", b"application/json")]
        try:
            body, status = await handler(scope, receive), 200
        except RequestError as err:
            self.metrics.error(err.kind)
            body, status = dump_json(err.to_dict()), err.status
            if status == 503:
                headers.append((b"retry-after", b"1"))
        except ClientGone:
            self.metrics.error("client_gone")
            body, status = b"", CLIENT_GONE  # nobody will read it
        except Exception as err:  # a bug: 500 naming it, and its traceback in the log
            self.metrics.error("internal")
            logging.getLogger("uvicorn.error").exception("Exception in %s", scope["path"])
            body, status = dump_json({"error": f"Internal error: {type(err).__name__}: {err}",
                                      "field": "service"}), 500
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def arrived(self, scope) -> None:
        """A linking request is queued (or refused): no longer arriving."""
        if scope.pop(ARRIVING, False):
            self.arriving -= 1

    # ------------------------------------------------------------------- routes

    async def link_route(self, request: Request) -> Response:
        """POST /link: the service's own JSON (MetricsMiddleware answers it directly)."""
        return json_bytes_response(await self.link_json(request.scope, request.receive))

    async def rel_route(self, request: Request) -> Response:
        """POST /: REL's API (MetricsMiddleware answers it directly)."""
        return json_bytes_response(await self.link_rel(request.scope, request.receive))

    async def nif_route(self, request: Request) -> Response:
        """POST /nif: NIF 2.1 Turtle in and out (GERBIL's A2KB and D2KB)."""
        from starlette.concurrency import run_in_threadpool

        body = await self.read_body(request.scope, request.receive)
        document = await run_in_threadpool(read_nif, body, self.limits)
        texts, mentions = nif_job_texts(document)
        found = await self.link(request.scope, request.receive,
                                Job(texts, mentions, fmt="nif", alignment="expand"))
        links = self.links

        def annotate_and_write() -> bytes:
            for i, context_links in enumerate(found):
                nif_annotate(links, document, i, context_links)
            return write_nif(document)

        turtle = await run_in_threadpool(annotate_and_write)
        return Response(turtle, media_type="text/turtle; charset=utf-8")

    async def entity_route(self, request: Request) -> Response:
        """GET /kb/entity/{id}."""
        kb_id = request.path_params["id"]
        answer = self.links.describe_entity(kb_id)
        if answer is None:
            raise RequestError(404, "id", f"id: no entity {kb_id!r} in the KB.",
                               kind="not_found")
        return json_response(answer)

    async def alias_route(self, request: Request) -> Response:
        """GET /kb/alias/{text}."""
        text = request.path_params["text"]
        if len(text) > self.limits.max_text_chars:
            raise RequestError(413, "text", "text: too long for an alias.")
        return json_response(self.links.describe_alias(text))

    async def health_route(self, request: Request) -> Response:
        kb = self.links.kb
        answer: Dict[str, Any] = {
            "status": "shutting down" if self.closing else "ok",
            "pipeline": self.links.name, "pid": os.getpid(),
            "finds_mentions": self.links.finds_mentions,
            "kb": {"entities": _call(kb, "get_size_entities"),
                   "aliases": _call(kb, "get_size_aliases")},
            "queued_docs": self.batcher.queued_docs, "batches": self.batcher.batches,
            "docs": self.batcher.docs, "limits": self.limits.to_dict(),
            "linker": self.backend.info(),
        }
        return json_response(answer, 503 if self.closing else 200)

    async def metrics_route(self, request: Request) -> Response:
        backend = self.backend
        text = self.metrics.render(self.batcher.queued_docs, getattr(backend, "restarts", 0),
                                   getattr(backend, "linking_seconds", 0.0))
        return PlainTextResponse(text,
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    # ---------------------------------------------------------------- lifecycle

    async def startup(self) -> None:
        # Off the loop: a linking process takes seconds to load its pipeline.
        await asyncio.get_running_loop().run_in_executor(None, self.backend.start)
        await self.batcher.start()

    async def shutdown(self) -> None:
        """After uvicorn has finished the in-flight requests: link what still waits,
        then stop the linking process (if any)."""
        self.closing = True
        await self.batcher.close()
        await asyncio.get_running_loop().run_in_executor(None, self.backend.close)
        print(f"entity-linker serve (pid {os.getpid()}): stopped; {self.batcher.docs:,} docs "
              f"linked in {self.batcher.batches:,} batches.", file=sys.stderr, flush=True)


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


async def _client_gone(receive) -> None:
    """Returns when the client disconnects (the body has been read by then)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _gone_error(task: "asyncio.Task") -> Optional[Exception]:
    """ClientGone when the watcher task saw the client leave (None if cancelled)."""
    if task.cancelled():
        return None
    task.exception()  # retrieved: a receive() that failed also means the client is gone
    return ClientGone()


def _fail(future: "asyncio.Future", error: Optional[Exception]) -> None:
    if error is not None and not future.done():
        future.set_exception(error)


def _header(scope, name: bytes) -> Optional[str]:
    """A request header's value (the first one), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _call(obj, method: str) -> Optional[int]:
    function = getattr(obj, method, None)
    return int(function()) if function is not None else None


class MetricsMiddleware:
    """Counts and times every request, by route template and status."""

    def __init__(self, app, service: Service, routes):
        self.app = app
        self.service = service
        self.routes = routes
        self.static = {route.path for route in routes if "{" not in route.path}
        # The JSON linking routes, answered here without Starlette's layers.
        self.direct = {"/link": service.link_json, "/": service.link_rel}

    def endpoint(self, scope) -> str:
        if scope["path"] in self.static:
            return scope["path"]
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route.path_format  # "/kb/entity/{id}"
        return "other"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.service.metrics
        start = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
            await send(message)

        metrics.in_flight += 1
        direct = None
        if scope["method"] == "POST" and scope["path"] in LINK_PATHS:
            scope[ARRIVING] = True
            self.service.arriving += 1
            direct = self.direct.get(scope["path"])
        try:
            if direct is not None:
                await self.service.answer_json(direct, scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self.service.arrived(scope)
            metrics.in_flight -= 1
            metrics.request(self.endpoint(scope), scope.get("method", ""), status["code"],
                            time.perf_counter() - start)


def create_app(links: LinkService, limits: Optional[Limits] = None, *, max_batch: int = 64,
               max_wait: float = 0.005, backend: Any = None) -> Any:
    """The ASGI app serving a loaded pipeline; ``backend`` links its batches
    (backends.py; default: a thread of this process)."""
    service = Service(links, limits or Limits(), max_batch=max_batch, max_wait=max_wait,
                      backend=backend)

    async def request_error(request: Request, err: RequestError) -> Response:
        service.metrics.error(err.kind)
        return error_response(err)

    async def http_error(request: Request, err: HTTPException) -> Response:
        service.metrics.error("not_found" if err.status_code == 404 else "bad_request")
        return json_response({"error": f"{request.method} {request.url.path}: {err.detail}",
                              "field": "path"}, err.status_code)

    async def client_gone(request: Request, err: ClientGone) -> Response:
        service.metrics.error("client_gone")
        return Response(b"", status_code=CLIENT_GONE)  # nobody will read it

    async def internal_error(request: Request, err: Exception) -> Response:
        service.metrics.error("internal")
        return json_response({"error": f"Internal error: {type(err).__name__}: {err}",
                              "field": "service"}, 500)

    routes = [
        Route("/link", service.link_route, methods=["POST"]),
        Route("/", service.rel_route, methods=["POST"]),
        Route("/nif", service.nif_route, methods=["POST"]),
        Route("/kb/entity/{id:path}", service.entity_route, methods=["GET"]),
        Route("/kb/alias/{text:path}", service.alias_route, methods=["GET"]),
        Route("/health", service.health_route, methods=["GET"]),
        Route("/metrics", service.metrics_route, methods=["GET"]),
    ]
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        await service.startup()
        try:
            yield
        finally:
            await service.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={RequestError: request_error, HTTPException: http_error,
                                        ClientGone: client_gone, Exception: internal_error})
    app.state.service = service
    return MetricsMiddleware(app, service, routes)


def app_from_env():
    """uvicorn's app factory: the settings come from the CLI through the environment
    (so that each of --workers N processes builds the same app)."""
    config = json.loads(os.environ.get(CONFIG_ENV) or "{}")
    # The linking thread holds the GIL for most of a batch; the event loop, which
    # gives it up at every socket call, would wait up to the 5 ms switch interval
    # to get it back each time. A shorter interval keeps the loop responsive
    # while a batch runs (reading, answering, and queueing the next batch).
    sys.setswitchinterval(config.get("switch_interval", SWITCH_INTERVAL))
    links = LinkService.load(config.get("pipeline"))
    limits = Limits(**config.get("limits", {}))
    backend = None
    if config.get("linker_process", False):
        # A batch may run past its requests' timeout (they get 503 then); one
        # that runs far past it means a hung child, which is stopped.
        backend = ProcessBackend(config.get("pipeline"),
                                 batch_timeout=2 * limits.request_timeout + 10)
    return create_app(links, limits, max_batch=config.get("max_batch", 64),
                      max_wait=config.get("max_wait", 0.005), backend=backend)

"""``entity-linker serve``: the linker as an HTTP service.

- app.py: the routes (Starlette; why not FastAPI is said there) and the app factory;
- batcher.py: dynamic batching of concurrent requests into ``nlp.pipe`` batches;
- backends.py: where the batches are linked: a linking child process per worker,
  or a thread of the worker;
- linking.py: the pipeline side (jobs in, linked docs out; KB lookups);
- formats.py: the formats: the service's JSON (/link), REL's (POST /), NIF 2.1 (/nif);
- errors.py: the limits and the 4xx errors naming the field at fault;
- metrics.py: Prometheus metrics (/metrics).
"""

from .app import app_from_env, create_app
from .backends import ProcessBackend, ThreadBackend
from .batcher import Batcher
from .errors import Limits, RequestError
from .linking import Job, LinkService

__all__ = ["Batcher", "Job", "Limits", "LinkService", "ProcessBackend", "RequestError",
           "ThreadBackend", "app_from_env", "create_app"]

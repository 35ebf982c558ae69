"""Limits of the linking service and the errors it answers with.

Every refused request gets a JSON body ``{"error": MESSAGE, "field": FIELD}``
(FIELD names the part of the request at fault: ``body``, ``texts[2]``,
``spans[0][1].end``, ...) and a 4xx status: 400 for a body that cannot be read
(not UTF-8, not JSON, not Turtle), 413 for a request over a limit, 422 for a
well-formed request with a wrong value (a wrong type, an offset out of range, a
span not on token boundaries), 408 for a body that arrived too slowly. 503 means
the service is busy (its queue is full) or the request took longer than its
timeout; 500 is a bug.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class Limits:
    """What one request may ask, and how long it may take."""

    max_body_bytes: int = 1_000_000
    max_text_chars: int = 100_000
    max_texts: int = 128
    max_spans: int = 1_000  # per text
    request_timeout: float = 30.0  # seconds, from the body read to the answer
    body_timeout: float = 10.0  # seconds to receive the body
    max_queue_docs: int = 4_096  # docs waiting to be linked before 503s

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class RequestError(Exception):
    """A request the service refuses: HTTP status, the field at fault, the reason."""

    def __init__(self, status: int, field: str, message: str, kind: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        # The metrics' error kind (entity_linker_errors_total{kind=...}).
        self.kind = kind or {400: "bad_request", 408: "body_timeout", 413: "too_large",
                             422: "invalid", 503: "unavailable"}.get(status, "error")

    def to_dict(self) -> Dict[str, Any]:
        return {"error": self.message, "field": self.field}


def bad_type(field: str, expected: str, value: Any) -> RequestError:
    """A 422 for a value of the wrong JSON type."""
    return RequestError(422, field, f"{field}: expected {expected}, got {json_type(value)}.",
                        kind="wrong_type")


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

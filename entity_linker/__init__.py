"""entity_linker: a fast, Cython-compiled entity linker and knowledge base for spaCy."""

from . import registry  # noqa: F401  (registers the config functions)
from .about import __version__
from .candidates import get_candidates, get_candidates_batch
from .errors import (
    KBError,
    KBFormatError,
    KBNotFoundError,
    KBWarning,
    ReadOnlyKBError,
)
from .kb import Candidate, InMemoryLookupKB, KnowledgeBase
from .pipeline import EntityLinker
from .spotter import KBSpotter  # noqa: F401  (registers the kb_spotter factory)

__all__ = [
    "Candidate",
    "EntityLinker",
    "InMemoryLookupKB",
    "KBError",
    "KBFormatError",
    "KBNotFoundError",
    "KBWarning",
    "KnowledgeBase",
    "ReadOnlyKBError",
    "__version__",
    "get_candidates",
    "get_candidates_batch",
]

"""The Cython knowledge base: entities, aliases, priors and entity vectors."""

from .candidate import Candidate
from .hashing import hash_string
from .in_memory import InMemoryLookupKB
from .kb import KnowledgeBase

__all__ = ["Candidate", "InMemoryLookupKB", "KnowledgeBase", "hash_string"]

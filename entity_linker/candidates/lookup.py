"""lookup_candidates: the candidates of a batch of mentions from a batch generator."""

from typing import Sequence

from spacy.tokens import Span

from ..kb import InMemoryLookupKB
from .protocol import ArrayCandidateGenerator
from .table import CandidateTable

__all__ = ["lookup_candidates"]


def lookup_candidates(kb, generator, mentions: Sequence[Span]) -> CandidateTable:
    """Candidates of all mentions in one call of a batch generator.

    On entity_linker's InMemoryLookupKB, an array generator
    (``ArrayCandidateGenerator``: the default ``get_candidates_batch``, the
    generators of generators.py, or any object with the protocol's methods)
    gives flat arrays and no Candidate object is built. Any other generator,
    or any other KB, is called as spaCy calls it and its Candidate objects are
    read.
    """
    if isinstance(generator, ArrayCandidateGenerator) and isinstance(kb, InMemoryLookupKB):
        return CandidateTable.from_arrays(kb, generator.arrays(kb, [m.text for m in mentions]))
    return CandidateTable.from_candidates(kb, generator(kb, mentions))

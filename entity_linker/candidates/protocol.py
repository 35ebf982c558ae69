"""What a candidate generator is: the array-generator protocol and its base class.

A batch candidate generator is what spaCy's ``get_candidates_batch`` setting
takes: a callable ``(kb, mentions) -> one list of Candidate objects per
mention``. An *array generator* can also return a batch's candidates as flat
arrays of entity_linker's InMemoryLookupKB (``arrays(kb, texts)``); the
``nel`` component then reads the arrays and builds no Candidate objects
(lookup.py dispatches on ``isinstance(generator, ArrayCandidateGenerator)``).
"""

from typing import Iterable, List, Protocol, Sequence, Union, runtime_checkable

from spacy.tokens import Span

from ..errors import KBError
from ..kb import Candidate, InMemoryLookupKB, KnowledgeBase
from .arrays import CandidateArrays

__all__ = ["ArrayCandidateGenerator", "CandidateGenerator"]


@runtime_checkable
class ArrayCandidateGenerator(Protocol):
    """A batch candidate generator that also gives its candidates as flat arrays.

    ``arrays(kb, texts)``: the candidates of each mention text on an
    InMemoryLookupKB, as CandidateArrays (offsets int64 [n + 1]; entity rows,
    priors and KB alias rows per candidate, best first within a mention).
    ``__call__(kb, mentions)``: the same candidates as spaCy's
    ``get_candidates_batch`` returns them, one list of Candidate per mention.

    Any object with both methods is one (no subclassing needed);
    CandidateGenerator is a base class that derives ``__call__`` from ``arrays``.
    """

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        ...

    def __call__(self, kb: KnowledgeBase,
                 mentions: Iterable[Span]) -> Iterable[Iterable[Candidate]]:
        ...


class CandidateGenerator:
    """Base class of array generators: subclasses define ``arrays``; calling one
    turns the arrays into Candidate objects, for one mention (a Span: spaCy's
    ``get_candidates``) or a batch (``get_candidates_batch``)."""

    name = "base"

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        """Candidates of each mention text as flat arrays."""
        raise NotImplementedError

    def __call__(
        self, kb: KnowledgeBase, mentions: Union[Span, Iterable[Span]]
    ) -> Union[List[Candidate], List[List[Candidate]]]:
        """Candidates of one mention (a Span) or of each mention of a batch."""
        single = isinstance(mentions, Span)
        spans = [mentions] if single else list(mentions)
        if not isinstance(kb, InMemoryLookupKB):
            raise KBError(
                f"The {self.name} candidate generator needs entity_linker's "
                f"InMemoryLookupKB, got {type(kb).__name__}."
            )
        lists = kb.candidates_from_arrays(*self.arrays(kb, [span.text for span in spans]))
        return lists[0] if single else lists

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({settings})"

"""spaCy's default candidate generators: exact match of the mention text.

``get_candidates`` and ``get_candidates_batch`` are the defaults of the
``nel`` component's settings of the same names (registered as
``entity_linker.CandidateGenerator.v1`` and
``entity_linker.CandidateBatchGenerator.v1``), drop-in replacements of
spaCy's functions: they return Candidate objects from the KB's own lookups.
"""

from typing import Iterable

from spacy.tokens import Span

from ..kb import Candidate, KnowledgeBase
from .generators import ExactCandidates

__all__ = ["KBBatchCandidates", "get_candidates", "get_candidates_batch"]


def get_candidates(kb: KnowledgeBase, mention: Span) -> Iterable[Candidate]:
    """Candidate entities of one mention: exact match of its text with an alias.

    kb (KnowledgeBase): The knowledge base to query.
    mention (Span): The entity mention.
    RETURNS (Iterable[Candidate]): The candidates (empty when none).
    """
    return kb.get_candidates(mention)


class KBBatchCandidates(ExactCandidates):
    """The default batch generator: the KB's own batched lookup.

    Called as spaCy calls ``get_candidates_batch(kb, mentions)``, it returns
    ``kb.get_candidates_batch(mentions)``, one list of Candidate objects per
    mention, for any KnowledgeBase. On entity_linker's InMemoryLookupKB, whose
    batch lookup is the exact match of the mention text, the ``nel`` component
    reads the same candidates as arrays (``arrays``: one nogil lookup of all
    mentions) and builds no Candidate objects.
    """

    name = "default"

    def __call__(self, kb: KnowledgeBase,
                 mentions: Iterable[Span]) -> Iterable[Iterable[Candidate]]:
        """Candidate entities of many mentions, looked up in one batched call.

        kb (KnowledgeBase): The knowledge base to query.
        mentions (Iterable[Span]): The entity mentions.
        RETURNS (Iterable[Iterable[Candidate]]): One list of candidates per mention.
        """
        return kb.get_candidates_batch(mentions)


# The default of the nel component's get_candidates_batch setting.
get_candidates_batch = KBBatchCandidates()

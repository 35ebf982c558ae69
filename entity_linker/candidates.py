"""Candidate generators: from a mention (a spaCy Span) to candidate entities.

These are the functions the EntityLinker calls through its ``get_candidates``
and ``get_candidates_batch`` settings. The default is spaCy's behaviour: an
exact, case-sensitive match of the mention text against the KB's aliases.
"""

from typing import Iterable

from spacy.tokens import Span

from .kb import Candidate, KnowledgeBase


def get_candidates(kb: KnowledgeBase, mention: Span) -> Iterable[Candidate]:
    """Candidate entities of one mention: exact match of its text with an alias.

    kb (KnowledgeBase): The knowledge base to query.
    mention (Span): The entity mention.
    RETURNS (Iterable[Candidate]): The candidates (empty when none).
    """
    return kb.get_candidates(mention)


def get_candidates_batch(kb: KnowledgeBase, mentions: Iterable[Span]) -> Iterable[Iterable[Candidate]]:
    """Candidate entities of many mentions, looked up in one batched call.

    kb (KnowledgeBase): The knowledge base to query.
    mentions (Iterable[Span]): The entity mentions.
    RETURNS (Iterable[Iterable[Candidate]]): One list of candidates per mention.
    """
    return kb.get_candidates_batch(mentions)

"""Functions registered for spaCy configs.

Each takes the same arguments as spaCy's function of the same name
(``spacy.EmptyKB.v2`` -> ``entity_linker.EmptyKB.v2``), so a spaCy config
switches to this package by renaming.
"""

from pathlib import Path
from typing import Callable, Iterable

from spacy.tokens import Span
from spacy.util import registry
from spacy.vocab import Vocab

from .candidates import get_candidates, get_candidates_batch
from .kb import Candidate, InMemoryLookupKB, KnowledgeBase
from .ml.models import build_nel_encoder

registry.architectures("entity_linker.EntityLinker.v1", func=build_nel_encoder)


@registry.misc("entity_linker.CandidateGenerator.v1")
def create_candidates() -> Callable[[KnowledgeBase, Span], Iterable[Candidate]]:
    """The default per-mention generator: exact match of the mention text."""
    return get_candidates


@registry.misc("entity_linker.CandidateBatchGenerator.v1")
def create_candidates_batch() -> Callable[
    [KnowledgeBase, Iterable[Span]], Iterable[Iterable[Candidate]]
]:
    """The default batch generator: exact match, one lookup for all mentions."""
    return get_candidates_batch


@registry.misc("entity_linker.EmptyKB.v1")
def empty_kb(entity_vector_length: int) -> Callable[[Vocab], KnowledgeBase]:
    """A function that creates an empty KB of the given vector length for a vocab."""

    def empty_kb_factory(vocab: Vocab) -> KnowledgeBase:
        return InMemoryLookupKB(vocab=vocab, entity_vector_length=entity_vector_length)

    return empty_kb_factory


@registry.misc("entity_linker.EmptyKB.v2")
def empty_kb_for_config() -> Callable[[Vocab, int], KnowledgeBase]:
    """A function that creates an empty KB for a vocab and vector length."""

    def empty_kb_factory(vocab: Vocab, entity_vector_length: int) -> KnowledgeBase:
        return InMemoryLookupKB(vocab=vocab, entity_vector_length=entity_vector_length)

    return empty_kb_factory


@registry.misc("entity_linker.KBFromFile.v1")
def load_kb(kb_path: Path) -> Callable[[Vocab], KnowledgeBase]:
    """A function that opens (memory-maps) the KB saved at kb_path for a vocab."""

    def kb_from_file(vocab: Vocab) -> KnowledgeBase:
        kb = InMemoryLookupKB(vocab, entity_vector_length=1)
        kb.from_disk(kb_path)
        return kb

    return kb_from_file


@registry.misc("entity_linker.GeoNamesKB.v1")
def geonames_kb(vector_length: int = 64) -> Callable[[Vocab], KnowledgeBase]:
    """A function that maps the GeoNames KB from the cache (building it on first use)."""

    def kb_from_cache(vocab: Vocab) -> KnowledgeBase:
        from .geonames import load_geonames_kb

        return load_geonames_kb(vocab, vector_length=vector_length)

    return kb_from_cache

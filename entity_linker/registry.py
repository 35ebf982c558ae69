"""Functions registered for spaCy configs.

Each takes the same arguments as spaCy's function of the same name
(``spacy.EmptyKB.v2`` -> ``entity_linker.EmptyKB.v2``), so a spaCy config
switches to this package by renaming.
"""

from pathlib import Path
from typing import Callable, Iterable, Optional

from spacy.tokens import Span
from spacy.util import registry
from spacy.vocab import Vocab

from .candidates import (
    DEFAULT_DISCOUNT,
    CascadeCandidates,
    ExactCandidates,
    FuzzyCandidates,
    NormalizedCandidates,
    get_candidates,
    get_candidates_batch,
)
from .kb import Candidate, InMemoryLookupKB, KnowledgeBase
from .ml.models import build_nel_encoder, build_nel_encoder_v2

registry.architectures("entity_linker.EntityLinker.v1", func=build_nel_encoder)
registry.architectures("entity_linker.EntityLinker.v2", func=build_nel_encoder_v2)


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


@registry.misc("entity_linker.ExactCandidates.v1")
def exact_candidates() -> ExactCandidates:
    """Exact, case-sensitive alias match (spaCy's behaviour), as a generator
    object usable for get_candidates and get_candidates_batch."""
    return ExactCandidates()


@registry.misc("entity_linker.NormalizedCandidates.v1")
def normalized_candidates(
    max_candidates: Optional[int] = None, discount: float = DEFAULT_DISCOUNT
) -> NormalizedCandidates:
    """Exact matches, then matches of the normalised mention (case, accents,
    punctuation, "St." -> "Saint"), their priors times discount where exact
    matches exist; at most max_candidates per mention."""
    return NormalizedCandidates(max_candidates=max_candidates, discount=discount)


@registry.misc("entity_linker.FuzzyCandidates.v1")
def fuzzy_candidates(
    min_score: float = 0.7, max_keys: int = 10, max_candidates: Optional[int] = None
) -> FuzzyCandidates:
    """Character-trigram search over the normalised aliases (cosine >= min_score,
    the max_keys most similar aliases)."""
    return FuzzyCandidates(min_score=min_score, max_keys=max_keys,
                           max_candidates=max_candidates)


@registry.misc("entity_linker.CascadeCandidates.v1")
def cascade_candidates(
    k: int = 30,
    min_score: float = 0.7,
    max_keys: int = 10,
    fuzzy_below: Optional[int] = 1,
    discount: float = DEFAULT_DISCOUNT,
) -> CascadeCandidates:
    """Exact -> normalised -> fuzzy until k candidates per mention; the fuzzy
    stage runs for mentions with fewer than fuzzy_below candidates."""
    return CascadeCandidates(k=k, min_score=min_score, max_keys=max_keys,
                             fuzzy_below=fuzzy_below, discount=discount)


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
def load_kb(kb_path: Path, verify: bool = False) -> Callable[[Vocab], KnowledgeBase]:
    """A function that opens (memory-maps) the KB saved at kb_path for a vocab;
    with ``verify``, after checking every checksum and index (O(file size))."""

    def kb_from_file(vocab: Vocab) -> KnowledgeBase:
        kb = InMemoryLookupKB(vocab, entity_vector_length=1)
        kb.from_disk(kb_path, verify=verify)
        return kb

    return kb_from_file


@registry.misc("entity_linker.GeoNamesKB.v1")
def geonames_kb(vector_length: int = 64) -> Callable[[Vocab], KnowledgeBase]:
    """A function that maps the GeoNames KB from the cache (building it on first use)."""

    def kb_from_cache(vocab: Vocab) -> KnowledgeBase:
        from .geonames import load_geonames_kb

        return load_geonames_kb(vocab, vector_length=vector_length)

    return kb_from_cache

"""Candidate generators: exact, normalised, fuzzy and a cascade of the three.

Each generator is a CandidateGenerator (protocol.py), usable as the
``get_candidates`` (one Span) or the ``get_candidates_batch`` (a list of
Spans) setting of the ``nel`` component, and registered for configs
(entity_linker/registry.py):

    [components.nel.get_candidates_batch]
    @misc = "entity_linker.CascadeCandidates.v1"
    k = 30

All but the exact one read the KB's alias index (``kb.build_alias_index()``,
stored in the KB file). Every lookup is one batched call into the KB for all
mentions; ``arrays()`` returns flat arrays (which the ``nel`` component reads
directly) and calling the generator returns Candidate objects.
"""

import warnings
from typing import Optional, Sequence

import numpy

from ..errors import KBError, KBWarning
from ..kb import InMemoryLookupKB
from ..kb.alias_index import AliasIndex
from ..kb.hashing import hash_strings
from .arrays import CandidateArrays, mention_ids, merge_stages, offsets_of, spread
from .protocol import CandidateGenerator

__all__ = ["DEFAULT_DISCOUNT", "CascadeCandidates", "ExactCandidates", "FuzzyCandidates",
           "NormalizedCandidates", "alias_index"]

# Prior multiplier of normalised matches next to exact ones. On GeoNames a
# normalised match under another spelling otherwise out-ranks the exact
# spelling's entities (LGL: 221 exact-match mentions linked wrongly at 1.0).
DEFAULT_DISCOUNT = 0.01


class ExactCandidates(CandidateGenerator):
    """spaCy's behaviour: the candidates of the alias equal to the mention text
    (case-sensitive), in the KB's order."""

    name = "exact"

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        alias_rows, offsets, entity_rows, priors = kb._lookup(hash_strings(texts))
        per_candidate = numpy.repeat(alias_rows, numpy.diff(offsets))
        return CandidateArrays(offsets, entity_rows, priors, per_candidate)


class NormalizedCandidates(CandidateGenerator):
    """Exact matches first, then the candidates of every alias with the same
    normalised form ("St. Louis" ~ "SAINT LOUIS"), by prior.

    A normalised match carries the prior it has under its own alias, which
    may be a rare spelling ("Califórnia", a village, prior 1.0): when the
    mention also has exact matches, those priors are multiplied by
    ``discount`` so the exact spelling's distribution decides.
    max_candidates (Optional[int]): Keep at most this many per mention (None: all).
    discount (float): Prior multiplier of normalised matches next to exact ones, in [0, 1].
    """

    name = "normalized"

    def __init__(self, max_candidates: Optional[int] = None,
                 discount: float = DEFAULT_DISCOUNT) -> None:
        self.max_candidates = _check_limit(max_candidates, "max_candidates")
        self.discount = _check_discount(discount)

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        alias_index(kb)
        limit = -1 if self.max_candidates is None else self.max_candidates
        return CandidateArrays(*kb.lookup_normalized(texts, limit, discount=self.discount))


class FuzzyCandidates(CandidateGenerator):
    """Candidates of the normalised aliases most similar to the mention by
    character trigrams (for misspellings and variants: "Pittsburg").

    Each candidate's prior is its alias prior times the trigram cosine.
    min_score (float): Minimum trigram cosine of an alias, in (0, 1].
    max_keys (int): Most similar normalised aliases used per mention.
    max_candidates (Optional[int]): Keep at most this many per mention.
    """

    name = "fuzzy"

    def __init__(self, min_score: float = 0.7, max_keys: int = 10,
                 max_candidates: Optional[int] = None) -> None:
        if not 0.0 < float(min_score) <= 1.0:
            raise KBError(f"min_score must lie in (0, 1], got {min_score!r}.")
        self.min_score = float(min_score)
        self.max_keys = _check_limit(max_keys, "max_keys")
        self.max_candidates = _check_limit(max_candidates, "max_candidates")

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        found = _fuzzy(kb, texts, self.min_score, self.max_keys)
        return merge_stages([found], len(texts), self.max_candidates)


class CascadeCandidates(CandidateGenerator):
    """Exact -> normalised -> fuzzy: each stage adds new entities (best prior
    first) until a mention has k candidates; fuzzy search runs only for the
    mentions the first two stages left short of ``fuzzy_below`` candidates.

    k (int): Most candidates per mention.
    min_score (float): Minimum trigram cosine of the fuzzy stage.
    max_keys (int): Most similar normalised aliases the fuzzy stage uses.
    fuzzy_below (Optional[int]): Run the fuzzy stage for mentions with fewer
        candidates than this after two stages (None: fewer than k).
    discount (float): Prior multiplier of normalised matches of a mention that
        has exact matches (see NormalizedCandidates).
    """

    name = "cascade"

    def __init__(self, k: int = 30, min_score: float = 0.7, max_keys: int = 10,
                 fuzzy_below: Optional[int] = 1, discount: float = DEFAULT_DISCOUNT) -> None:
        self.k = _check_limit(k, "k")
        self.fuzzy = FuzzyCandidates(min_score, max_keys)
        self.fuzzy_below = _check_limit(fuzzy_below, "fuzzy_below")
        self.discount = _check_discount(discount)

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        alias_index(kb)
        merged = CandidateArrays(*kb.lookup_normalized(texts, self.k, by_prior=True,
                                                       discount=self.discount))
        threshold = self.k if self.fuzzy_below is None else self.fuzzy_below
        short = numpy.flatnonzero(numpy.diff(merged.offsets) < threshold)
        if not len(short):
            return merged
        found = _fuzzy(kb, [texts[i] for i in short], self.fuzzy.min_score,
                       self.fuzzy.max_keys)
        return merge_stages([merged, spread(found, short, len(texts))], len(texts), self.k)


def alias_index(kb: InMemoryLookupKB) -> AliasIndex:
    """The KB's alias index, built in memory (with a warning) when it has none."""
    index = kb.alias_index
    if index is None:
        warnings.warn(
            f"This KB ({kb.path or 'in memory'}) has no alias index, so it is built now "
            f"in memory for {kb.get_size_aliases():,} aliases. Build it once and store "
            "it: kb.build_alias_index() before kb.to_disk(), or `entity-linker kb index`.",
            KBWarning,
            stacklevel=3,
        )
        index = kb.build_alias_index()
    return index


def _fuzzy(kb: InMemoryLookupKB, texts: Sequence[str], min_score: float,
           max_keys: int) -> CandidateArrays:
    """Candidates of the similar keys, prior x similarity, best first, one per entity."""
    index = alias_index(kb)
    key_offsets, key_rows, scores = index.search(texts, min_score, max_keys)
    slot_offsets, entity_rows, priors, alias_rows = index.gather(key_rows)
    slot_counts = numpy.diff(slot_offsets)
    mention = numpy.repeat(mention_ids(key_offsets), slot_counts)
    combined = priors * numpy.repeat(scores, slot_counts)
    order = numpy.lexsort((entity_rows, -combined, mention))
    found = CandidateArrays(
        offsets_of(mention[order], len(texts)), entity_rows[order], combined[order],
        alias_rows[order].astype(numpy.int64),
    )
    return merge_stages([found], len(texts))


def _check_limit(value: Optional[int], name: str) -> Optional[int]:
    if value is None and name in ("max_candidates", "fuzzy_below"):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
        raise KBError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def _check_discount(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise KBError(f"discount must be a number in [0, 1], got {value!r}.")
    return float(value)

"""Candidate generators beyond exact match: normalised, fuzzy and a cascade.

Each generator is an object usable as the ``get_candidates`` (one Span) or
the ``get_candidates_batch`` (a list of Spans) setting of the ``nel``
component, and registered for configs:

    [components.nel.get_candidates_batch]
    @misc = "entity_linker.CascadeCandidates.v1"
    k = 30

The generators read the KB's alias index (``kb.build_alias_index()``, stored
in the KB file). Every lookup is one batched call into the Cython index for
all mentions; ``arrays()`` returns flat arrays (which the ``nel`` component
reads directly) and calling the generator returns Candidate objects.
"""

import warnings
from typing import Iterable, List, NamedTuple, Optional, Sequence, Union

import numpy
from spacy.tokens import Span

from .errors import KBError, KBWarning
from .kb import Candidate, InMemoryLookupKB, KnowledgeBase
from .kb.alias_index import AliasIndex
from .kb.hashing import hash_strings

# Prior multiplier of normalised matches next to exact ones. On GeoNames a
# normalised match under another spelling otherwise out-ranks the exact
# spelling's entities (LGL: 221 exact-match mentions linked wrongly at 1.0).
DEFAULT_DISCOUNT = 0.01


class CandidateArrays(NamedTuple):
    """Candidates of n mentions as flat arrays: mention i owns items
    offsets[i]:offsets[i + 1] (entity row, prior, and the KB alias row the
    candidate was found under), best first."""

    offsets: numpy.ndarray  # int64 [n + 1]
    entity_rows: numpy.ndarray  # uint32
    priors: numpy.ndarray  # float32
    alias_rows: numpy.ndarray  # int64


class CandidateGenerator:
    """Base class: turns mentions into candidates with one batched lookup."""

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
        return merge_stages([merged, _spread(found, short, len(texts))], len(texts), self.k)


def merge_stages(stages: Sequence[CandidateArrays], n: int,
                 limit: Optional[int] = None) -> CandidateArrays:
    """Concatenate per-mention candidate lists stage by stage, keeping the first
    occurrence of each entity of a mention and at most ``limit`` per mention."""
    if not stages:
        empty = numpy.zeros(0)
        return CandidateArrays(numpy.zeros(n + 1, dtype=numpy.int64), empty.astype(numpy.uint32),
                               empty.astype(numpy.float32), empty.astype(numpy.int64))
    mention = numpy.concatenate([_mention_ids(stage.offsets) for stage in stages])
    entity = numpy.concatenate([stage.entity_rows for stage in stages]).astype(numpy.int64)
    prior = numpy.concatenate([stage.priors for stage in stages]).astype(numpy.float32)
    alias = numpy.concatenate([stage.alias_rows for stage in stages]).astype(numpy.int64)
    order = numpy.argsort(mention, kind="stable")  # stage order kept within a mention
    mention, entity, prior, alias = mention[order], entity[order], prior[order], alias[order]
    pair = mention * (int(entity.max(initial=0)) + 1) + entity
    _, first = numpy.unique(pair, return_index=True)
    keep = numpy.zeros(len(pair), dtype=bool)
    keep[first] = True
    mention, entity, prior, alias = mention[keep], entity[keep], prior[keep], alias[keep]
    counts = numpy.bincount(mention, minlength=n)
    if limit is not None:
        starts = numpy.cumsum(counts) - counts
        rank = numpy.arange(len(mention)) - numpy.repeat(starts, counts)
        keep = rank < limit
        mention, entity, prior, alias = mention[keep], entity[keep], prior[keep], alias[keep]
        counts = numpy.minimum(counts, limit)
    offsets = numpy.zeros(n + 1, dtype=numpy.int64)
    numpy.cumsum(counts, out=offsets[1:])
    return CandidateArrays(offsets, entity.astype(numpy.uint32), prior, alias)


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
    mention = numpy.repeat(_mention_ids(key_offsets), slot_counts)
    combined = priors * numpy.repeat(scores, slot_counts)
    order = numpy.lexsort((entity_rows, -combined, mention))
    spread = CandidateArrays(
        _offsets_of(mention[order], len(texts)), entity_rows[order], combined[order],
        alias_rows[order].astype(numpy.int64),
    )
    return merge_stages([spread], len(texts))


def _spread(arrays: CandidateArrays, mentions: numpy.ndarray, n: int) -> CandidateArrays:
    """Arrays for a subset of mentions, re-indexed to all n mentions."""
    mention = mentions[_mention_ids(arrays.offsets)]
    return CandidateArrays(_offsets_of(mention, n), arrays.entity_rows, arrays.priors,
                           arrays.alias_rows)


def _mention_ids(offsets: numpy.ndarray) -> numpy.ndarray:
    return numpy.repeat(numpy.arange(len(offsets) - 1, dtype=numpy.int64), numpy.diff(offsets))


def _offsets_of(sorted_mentions: numpy.ndarray, n: int) -> numpy.ndarray:
    offsets = numpy.zeros(n + 1, dtype=numpy.int64)
    numpy.cumsum(numpy.bincount(sorted_mentions, minlength=n), out=offsets[1:])
    return offsets


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

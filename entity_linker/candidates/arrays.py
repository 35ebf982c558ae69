"""Candidate lists of a batch of mentions as flat arrays, and their maths.

A batch's candidates are CSR arrays by mention: mention i owns the items
``offsets[i]:offsets[i + 1]``. The generators (generators.py) return them
and the ``nel`` component reads them without building Candidate objects.
"""

from typing import NamedTuple, Optional, Sequence

import numpy

from ..kb.relations import concatenated_ranges

__all__ = ["CandidateArrays", "concatenated_ranges", "mention_ids", "merge_stages",
           "offsets_of", "spread"]


class CandidateArrays(NamedTuple):
    """Candidates of n mentions as flat arrays: mention i owns items
    offsets[i]:offsets[i + 1] (entity row, prior, and the KB alias row the
    candidate was found under), best first."""

    offsets: numpy.ndarray  # int64 [n + 1]
    entity_rows: numpy.ndarray  # uint32
    priors: numpy.ndarray  # float32
    alias_rows: numpy.ndarray  # int64


def merge_stages(stages: Sequence[CandidateArrays], n: int,
                 limit: Optional[int] = None) -> CandidateArrays:
    """Concatenate per-mention candidate lists stage by stage, keeping the first
    occurrence of each entity of a mention and at most ``limit`` per mention."""
    if not stages:
        empty = numpy.zeros(0)
        return CandidateArrays(numpy.zeros(n + 1, dtype=numpy.int64), empty.astype(numpy.uint32),
                               empty.astype(numpy.float32), empty.astype(numpy.int64))
    mention = numpy.concatenate([mention_ids(stage.offsets) for stage in stages])
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


def spread(arrays: CandidateArrays, mentions: numpy.ndarray, n: int) -> CandidateArrays:
    """Arrays of a subset of mentions (``mentions``, ascending), re-indexed to all
    n mentions; the others get no candidates."""
    mention = numpy.asarray(mentions, dtype=numpy.int64)[mention_ids(arrays.offsets)]
    return CandidateArrays(offsets_of(mention, n), arrays.entity_rows, arrays.priors,
                           arrays.alias_rows)


def mention_ids(offsets: numpy.ndarray) -> numpy.ndarray:
    """The mention of each item of CSR offsets (int64)."""
    return numpy.repeat(numpy.arange(len(offsets) - 1, dtype=numpy.int64), numpy.diff(offsets))


def offsets_of(sorted_mentions: numpy.ndarray, n: int) -> numpy.ndarray:
    """CSR offsets (int64 [n + 1]) of items whose mentions are given, sorted."""
    offsets = numpy.zeros(n + 1, dtype=numpy.int64)
    numpy.cumsum(numpy.bincount(sorted_mentions, minlength=n), out=offsets[1:])
    return offsets

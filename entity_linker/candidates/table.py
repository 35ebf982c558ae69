"""CandidateTable: the candidates of a batch of mentions as flat arrays."""

from typing import Dict, Iterable, List, Optional, Sequence

import numpy

from ..kb import Candidate
from .arrays import CandidateArrays, concatenated_ranges

__all__ = ["CandidateTable"]


class CandidateTable:
    """The candidates of a batch of mentions as flat arrays (CSR by mention).

    Mention i owns candidates [offsets[i], offsets[i + 1]) with their priors,
    entity vectors (one row each), entity keys (hashes of the entity ids) and
    entity frequencies. Built from the arrays of an array generator on an
    InMemoryLookupKB, or from Candidate objects of any candidate generator. A
    data table only: the scores are computed in ``entity_linker.scoring``.
    """

    def __init__(self, kb, offsets, priors, vectors, keys, rows=None, ids=None, freqs=None):
        self.kb = kb
        self.offsets = offsets
        self.priors = priors
        self.vectors = vectors
        self.keys = keys
        self._rows = rows
        self._ids = ids
        self._freqs = freqs

    @property
    def freqs(self) -> Optional[numpy.ndarray]:
        """The candidates' entity frequencies (None when the KB cannot say); read
        from the KB on first use, as only the learned scoring needs them."""
        if self._freqs is None and self._rows is not None and hasattr(self.kb, "entity_freqs"):
            self._freqs = self.kb.entity_freqs[self._rows]
        return self._freqs

    @property
    def n_candidates(self) -> int:
        return len(self.priors)

    @classmethod
    def from_arrays(cls, kb, arrays: CandidateArrays) -> "CandidateTable":
        """From the flat candidate arrays of an InMemoryLookupKB (entity rows index
        its vectors and entity hashes)."""
        rows = arrays.entity_rows
        return cls(kb, arrays.offsets, arrays.priors, kb.vectors[rows], kb.entity_hashes[rows],
                   rows=rows)

    @classmethod
    def from_candidates(cls, kb, candidate_lists: Iterable[Iterable[Candidate]]
                        ) -> "CandidateTable":
        """From Candidate objects (any KB, any generator)."""
        lists = [list(cands) for cands in candidate_lists]
        counts = [len(cands) for cands in lists]
        offsets = numpy.zeros(len(lists) + 1, dtype=numpy.int64)
        numpy.cumsum(counts, out=offsets[1:])
        flat = [cand for cands in lists for cand in cands]
        priors = numpy.asarray([c.prior_prob for c in flat], dtype=numpy.float32)
        length = kb.entity_vector_length
        vectors = numpy.zeros((len(flat), length), dtype=numpy.float32)
        for j, cand in enumerate(flat):
            # Our Candidate's zero-copy view where there is one, spaCy's list otherwise.
            vector = getattr(cand, "vector", None)
            vectors[j] = cand.entity_vector if vector is None else vector
        keys = numpy.asarray([c.entity for c in flat], dtype=numpy.uint64)
        freqs = numpy.asarray([c.entity_freq for c in flat], dtype=numpy.float32)
        return cls(kb, offsets, priors, vectors, keys, ids=[c.entity_ for c in flat],
                   freqs=freqs)

    def entity_id(self, j: int) -> str:
        """The KB id of candidate j."""
        if self._ids is not None:
            return self._ids[j]
        return self.kb.get_entity_id(int(self._rows[j]))

    def entity_ids(self, indices: Sequence[int]) -> List[str]:
        """The KB ids of many candidates (each KB row read once)."""
        if self._ids is not None:
            return [self._ids[j] for j in indices]
        rows = self._rows[numpy.asarray(indices, dtype=numpy.int64)].tolist()
        get_entity_id = self.kb.get_entity_id
        known: Dict[int, str] = {}
        return [known[r] if r in known else known.setdefault(r, get_entity_id(r))
                for r in rows]

    def entity_rows(self) -> numpy.ndarray:
        """The candidates' entity rows in the KB (int64; -1 where the KB lacks
        the entity, as for candidates of a custom generator)."""
        if self._rows is not None:
            return numpy.asarray(self._rows, dtype=numpy.int64)
        return numpy.asarray(self.kb.get_entity_rows(numpy.asarray(self.keys, numpy.uint64)),
                             dtype=numpy.int64)

    def ranked(self, scores) -> numpy.ndarray:
        """All candidate indices, each mention's segment sorted best first: by
        score, then prior (both descending), then entity id (ascending).
        Deterministic: no random tie-breaking."""
        counts = numpy.diff(self.offsets)
        mention = numpy.repeat(numpy.arange(len(counts)), counts)
        order = numpy.lexsort((-self.priors, -scores, mention))
        # Full ties (same mention, score and prior; rare) are settled by entity id.
        same = (
            (mention[order][1:] == mention[order][:-1])
            & (scores[order][1:] == scores[order][:-1])
            & (self.priors[order][1:] == self.priors[order][:-1])
        )
        for i in numpy.unique(mention[order][1:][same]).tolist():
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            segment = order[start:end].tolist()
            segment.sort(key=lambda j: (-scores[j], -self.priors[j], self.entity_id(j)))
            order[start:end] = segment
        return order

    def positions(self, mentions: Sequence[int]) -> numpy.ndarray:
        """Indices of the candidates of some mentions, in the order given."""
        mentions = numpy.asarray(mentions, dtype=numpy.int64)
        starts = self.offsets[mentions]
        return concatenated_ranges(starts, self.offsets[mentions + 1] - starts)

    def select(self, mentions: Sequence[int]) -> "CandidateTable":
        """The table of some of the mentions (e.g. those with a gold entity)."""
        mentions = numpy.asarray(mentions, dtype=numpy.int64)
        picked = self.positions(mentions)
        offsets = numpy.zeros(len(mentions) + 1, dtype=numpy.int64)
        numpy.cumsum(self.offsets[mentions + 1] - self.offsets[mentions], out=offsets[1:])
        rows = None if self._rows is None else self._rows[picked]
        ids = None if self._ids is None else [self._ids[j] for j in picked.tolist()]
        freqs = None if self._freqs is None else self._freqs[picked]
        return CandidateTable(self.kb, offsets, self.priors[picked], self.vectors[picked],
                              self.keys[picked], rows=rows, ids=ids, freqs=freqs)

"""``EvidenceCache``: the doc evidence and word pairs of training docs, kept
across epochs.

Training computes, for every batch, what each doc's other mentions say of
its candidates (``doc_evidence``) and the (context word, name word) pairs
of the candidates (``word_pairs.pair_keys``). Both depend only on the doc,
its mentions, their candidates and the KB, and training sees every doc once
per epoch, so ``nel`` keeps them per doc, keyed by the doc's text, its
mentions and its candidates (a changed doc or candidate list misses the
cache), within a memory budget (least recently used docs out first).
``nel`` clears it when its KB or its scorer's inputs change.
"""

from collections import OrderedDict
from typing import Any, Callable, Hashable, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span

from .candidates import CandidateTable
from .doc_evidence import DocEvidence

Pairs = Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]
# The cache's budget: arrays and doc texts, in bytes.
MAX_BYTES = 256 << 20


def doc_key(doc: Doc, table: CandidateTable) -> tuple:
    """What a doc's evidence depends on, besides the KB: its text, its
    mentions and their candidates (keys and priors)."""
    mentions = tuple((ent.start_char, ent.end_char, ent.label) for ent in doc.ents)
    return (doc.text, mentions, numpy.asarray(table.offsets).tobytes(),
            numpy.asarray(table.keys).tobytes(), numpy.asarray(table.priors).tobytes())


def _size(value: Any) -> int:
    if isinstance(value, numpy.ndarray):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(_size(v) for v in value)
    if isinstance(value, (str, bytes)):
        return len(value)
    return 0


class EvidenceCache:
    """Per-doc (DocEvidence, pairs) of training docs, least recently used out
    first once ``max_bytes`` is reached."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, Tuple[DocEvidence, Optional[Pairs], int]] = \
            OrderedDict()
        self._bytes = 0
        self._generation: Optional[Hashable] = None
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def batch(self, generation: Hashable, docs: Sequence[Doc], mentions: List[Span],
              table: CandidateTable,
              compute: Callable[[Doc, List[Span], CandidateTable, slice],
                                Tuple[DocEvidence, Optional[Pairs]]]
              ) -> Tuple[DocEvidence, Optional[Pairs]]:
        """The evidence and pairs of a batch's candidate ``table`` (all the
        docs' mentions, doc by doc), per doc from the cache or from
        ``compute(doc, its mentions, its table, its slice of mentions)``.

        generation: what the evidence depends on beyond the doc (the KB, the
        scorer's inputs): a new one empties the cache.
        """
        if generation != self._generation:
            self.clear()
            self._generation = generation
        parts, pair_parts, sizes = [], [], []
        start = 0
        for doc in docs:
            n = len(doc.ents)
            mention_slice = slice(start, start + n)
            doc_table = table.select(range(start, start + n))
            key = doc_key(doc, doc_table)
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                evidence, pairs = compute(doc, mentions[mention_slice], doc_table, mention_slice)
                self._put(key, evidence, pairs)
            else:
                self.hits += 1
                self._entries.move_to_end(key)
                evidence, pairs = entry[0], entry[1]
            first_candidate = int(table.offsets[start])
            parts.append(evidence)
            sizes.append(doc_table.n_candidates)
            if pairs is not None:
                keys, owners, shares = pairs
                pair_parts.append((keys, owners + first_candidate, shares))
            start += n
        evidence = DocEvidence.concatenate(parts, sizes)
        if not pair_parts:
            return evidence, None
        return evidence, tuple(numpy.concatenate(column) for column in zip(*pair_parts))

    def _put(self, key: tuple, evidence: DocEvidence, pairs: Optional[Pairs]) -> None:
        size = _size(key) + _size(tuple(evidence)) + _size(pairs)
        if size > self.max_bytes:
            return
        self._entries[key] = (evidence, pairs, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped


def select_pairs(pairs: Optional[Pairs], positions: numpy.ndarray,
                 n_candidates: int) -> Optional[Pairs]:
    """The pairs of the candidates at ``positions`` of a table of
    ``n_candidates``, their owners renumbered as in ``table.select``."""
    if pairs is None:
        return None
    keys, owners, shares = pairs
    new_index = numpy.full(n_candidates, -1, dtype=numpy.int64)
    new_index[positions] = numpy.arange(len(positions))
    renumbered = new_index[owners]
    kept = renumbered >= 0
    return keys[kept], renumbered[kept], shares[kept]

"""Candidate generators: from a mention (a spaCy Span) to candidate entities.

These are the functions the EntityLinker calls through its ``get_candidates``
and ``get_candidates_batch`` settings. The default is spaCy's behaviour: an
exact, case-sensitive match of the mention text against the KB's aliases.
"""

from typing import Dict, Iterable, List, Optional, Sequence

import numpy
from spacy.tokens import Span

from .kb import Candidate, KnowledgeBase


def get_candidates(kb: KnowledgeBase, mention: Span) -> Iterable[Candidate]:
    """Candidate entities of one mention: exact match of its text with an alias.

    kb (KnowledgeBase): The knowledge base to query.
    mention (Span): The entity mention.
    RETURNS (Iterable[Candidate]): The candidates (empty when none).
    """
    return kb.get_candidates(mention)


def get_candidates_batch(
    kb: KnowledgeBase, mentions: Iterable[Span]
) -> Iterable[Iterable[Candidate]]:
    """Candidate entities of many mentions, looked up in one batched call.

    kb (KnowledgeBase): The knowledge base to query.
    mentions (Iterable[Span]): The entity mentions.
    RETURNS (Iterable[Iterable[Candidate]]): One list of candidates per mention.
    """
    return kb.get_candidates_batch(mentions)


# Softmax temperature of the candidate loss: cosines in [-1, 1] become logits in [-10, 10].
CANDIDATE_LOGIT_SCALE = 10.0


class CandidateTable:
    """The candidates of a batch of mentions as flat arrays (CSR by mention).

    Mention i owns candidates [offsets[i], offsets[i + 1]) with their priors,
    entity vectors (one row each) and entity keys (hashes of the entity ids).
    Built straight from the KB's batch lookup, or from Candidate objects of
    any candidate generator.
    """

    def __init__(self, kb, offsets, priors, vectors, keys, rows=None, ids=None):
        self.kb = kb
        self.offsets = offsets
        self.priors = priors
        self.vectors = vectors
        self.keys = keys
        self._rows = rows
        self._ids = ids

    @property
    def n_candidates(self) -> int:
        return len(self.priors)

    @classmethod
    def from_kb_lookup(cls, kb, mentions: Sequence[Span]) -> "CandidateTable":
        """Exact-match candidates from an InMemoryLookupKB in one nogil lookup."""
        offsets, rows, priors = kb.lookup_aliases([m.text for m in mentions])
        keys = kb.entity_hashes[rows]
        return cls(kb, offsets, priors, kb.vectors[rows], keys, rows=rows)

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
            vectors[j] = cand.entity_vector
        keys = numpy.asarray([c.entity for c in flat], dtype=numpy.uint64)
        return cls(kb, offsets, priors, vectors, keys, ids=[c.entity_ for c in flat])

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

    def cosine(self, encodings) -> numpy.ndarray:
        """Cosine similarity of each candidate's vector with its mention's encoding."""
        counts = numpy.diff(self.offsets)
        norms = numpy.linalg.norm(encodings, axis=1, keepdims=True)
        unit = numpy.divide(encodings, norms, out=numpy.zeros_like(encodings),
                            where=norms > 0)
        per_candidate = numpy.repeat(unit, counts, axis=0)
        dots = numpy.einsum("ij,ij->i", per_candidate, self.vectors)
        vector_norms = numpy.linalg.norm(self.vectors, axis=1)
        return numpy.divide(dots, vector_norms, out=numpy.zeros_like(dots),
                            where=vector_norms > 0).astype(numpy.float32)

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
        return CandidateTable(self.kb, offsets, self.priors[picked], self.vectors[picked],
                              self.keys[picked], rows=rows, ids=ids)

    def coherence(self, docs: Sequence[int], groups: Sequence[int],
                  include: Optional[Sequence[bool]] = None) -> numpy.ndarray:
        """Per candidate: how well its entity fits the other mentions of its doc.

        Each mention is summarised by the prior-weighted mean of its candidates'
        unit entity vectors. A candidate's coherence is the cosine of its vector
        with the sum of the summaries of the other mentions of the same doc,
        leaving out the mention's own group (mentions with the same text, which
        would only vote for themselves). 0 when the doc has no other mention.
        In a KB whose vectors describe where or what an entity is, this prefers
        the Paris near the doc's other places.

        docs (Sequence[int]): The doc index of each mention.
        groups (Sequence[int]): A group id per mention, equal for same-text
            mentions of one doc.
        include (Optional[Sequence[bool]]): Mentions that vote (default all).
        RETURNS (numpy.ndarray): float32, one value per candidate.
        """
        n = len(self.offsets) - 1
        counts = numpy.diff(self.offsets)
        mention = numpy.repeat(numpy.arange(n), counts)
        norms = numpy.linalg.norm(self.vectors, axis=1, keepdims=True)
        unit = numpy.divide(self.vectors, norms, out=numpy.zeros_like(self.vectors),
                            where=norms > 0).astype(numpy.float64)
        priors = self.priors.astype(numpy.float64)
        totals = numpy.bincount(mention, weights=priors, minlength=n)
        # Priors that sum to 0 (e.g. a KB without them): every candidate weighs the same.
        weights = numpy.where(totals[mention] > 0,
                              priors / numpy.maximum(totals[mention], 1e-300),
                              1.0 / numpy.maximum(counts[mention], 1))
        if include is not None:
            weights = weights * numpy.asarray(include, dtype=bool)[mention]
        summaries = numpy.zeros((n, unit.shape[1]), dtype=numpy.float64)
        numpy.add.at(summaries, mention, weights[:, None] * unit)
        docs = numpy.asarray(docs, dtype=numpy.int64)
        groups = numpy.asarray(groups, dtype=numpy.int64)
        by_doc = numpy.zeros((int(docs.max(initial=-1)) + 1, unit.shape[1]))
        numpy.add.at(by_doc, docs, summaries)
        by_group = numpy.zeros((int(groups.max(initial=-1)) + 1, unit.shape[1]))
        numpy.add.at(by_group, groups, summaries)
        context = by_doc[docs] - by_group[groups]
        context_norms = numpy.linalg.norm(context, axis=1, keepdims=True)
        # Rounding leaves tiny non-zero contexts where no other mention voted.
        context = numpy.divide(context, context_norms, out=numpy.zeros_like(context),
                               where=context_norms > 1e-9)
        return numpy.einsum("ij,ij->i", unit, context[mention]).astype(numpy.float32)

    def softmax_scores(self, sims, incl_prior: bool, incl_context: bool,
                       bias=None) -> numpy.ndarray:
        """Per-mention softmax of ``scale * sim + log(prior) + bias`` (the terms included)."""
        logits = numpy.zeros(self.n_candidates, dtype=numpy.float64)
        if incl_context:
            logits += CANDIDATE_LOGIT_SCALE * sims
        if incl_prior:
            logits += numpy.log(self.priors.astype(numpy.float64) + 1e-6)
        if bias is not None:
            logits += bias
        scores = numpy.empty(self.n_candidates, dtype=numpy.float32)
        offsets = self.offsets
        for i in range(len(offsets) - 1):
            start, end = int(offsets[i]), int(offsets[i + 1])
            if start == end:
                continue
            segment = numpy.exp(logits[start:end] - logits[start:end].max())
            scores[start:end] = segment / segment.sum()
        return scores

    def softmax_loss(self, encodings, gold_ids: Sequence[str], incl_prior: bool,
                     scoring: str = "spacy", lexical=None, bias=None):
        """Cross-entropy of the gold entity among each mention's candidates.

        The logits are ``scale`` times the score prediction ranks by: with
        ``scoring="spacy"``, ``prior + cos - prior * cos`` (so, as at prediction,
        a high-prior candidate's similarity barely matters and the loss works
        on the gold entity's); with ``"softmax"``, ``cos + log(prior) / scale``.
        With ``lexical = (encodings, weight)`` the similarity is the weighted
        mean ``(cos + weight * lexical_cos) / (1 + weight)``, as at prediction.
        ``bias`` (one value per candidate, e.g. the weighted coherence) is added
        to the logits, as ``softmax_scores`` does.
        Mentions whose gold entity is not a candidate, or that have a single
        candidate, add nothing.
        RETURNS (Tuple[float, ndarray]): mean loss and its gradient w.r.t. encodings.
        """
        from .kb import hash_string

        gradient = numpy.zeros_like(encodings)
        counts = numpy.diff(self.offsets)
        # All candidates of all mentions at once; segments are the mentions.
        mention = numpy.repeat(numpy.arange(len(counts)), counts)
        gold_keys = numpy.asarray([hash_string(g) for g in gold_ids], dtype=numpy.uint64)
        is_gold = self.keys == gold_keys[mention]
        has_gold = numpy.zeros(len(counts), dtype=bool)
        has_gold[mention[is_gold]] = True
        used = has_gold & (counts >= 2)
        if not used.any():
            return 0.0, gradient
        keep = used[mention]
        mention, is_gold = mention[keep], is_gold[keep]
        # Positions of the used mentions' first candidates in the kept arrays.
        starts = numpy.concatenate([[0], numpy.cumsum(counts[used])[:-1]])
        cos, d_cos = _cosine_with_grad(encodings[mention], self.vectors[keep])
        if lexical is not None:
            lexical_encodings, weight = lexical
            lexical_cos = _cosine_with_grad(lexical_encodings[mention], self.vectors[keep])[0]
            cos = blend_similarity(cos, lexical_cos, weight)
            d_cos = d_cos / (1.0 + weight)
        priors = self.priors[keep].astype(numpy.float64)
        if not incl_prior:
            logits, d_logit_d_cos = cos, numpy.ones_like(cos)
        elif scoring == "spacy":
            logits, d_logit_d_cos = priors + cos - priors * cos, 1.0 - priors
        else:
            logits = cos + numpy.log(priors + 1e-6) / CANDIDATE_LOGIT_SCALE
            d_logit_d_cos = numpy.ones_like(cos)
        logits = CANDIDATE_LOGIT_SCALE * logits
        if bias is not None:
            logits = logits + numpy.asarray(bias, dtype=numpy.float64)[keep]
        segment = numpy.repeat(numpy.arange(len(starts)), counts[used])
        logits = logits - numpy.maximum.reduceat(logits, starts)[segment]
        probs = numpy.exp(logits)
        probs /= numpy.add.reduceat(probs, starts)[segment]
        # The first gold candidate of each mention is the target.
        first_gold = numpy.zeros(len(probs), dtype=bool)
        gold_positions = numpy.flatnonzero(is_gold)
        _, first = numpy.unique(segment[gold_positions], return_index=True)
        first_gold[gold_positions[first]] = True
        n_used = len(starts)
        total = -float(numpy.log(probs[first_gold] + 1e-12).sum()) / n_used
        d_logits = probs - first_gold
        d_cos_total = CANDIDATE_LOGIT_SCALE * d_logits * d_logit_d_cos
        numpy.add.at(gradient, mention, d_cos_total[:, None] * d_cos)
        gradient /= n_used
        return total, gradient


def concatenated_ranges(starts, counts) -> numpy.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    counts = numpy.asarray(counts, dtype=numpy.int64)
    first = numpy.repeat(numpy.asarray(starts, dtype=numpy.int64)
                         - (numpy.cumsum(counts) - counts), counts)
    return first + numpy.arange(int(counts.sum()), dtype=numpy.int64)


def blend_similarity(model_cos, lexical_cos, weight: float):
    """The context similarity with a context encoder: the mean of the model's and the
    lexical cosine, weighted 1 : weight (the same in prediction and in the loss)."""
    return (model_cos + weight * lexical_cos) / (1.0 + weight)


def _cosine_with_grad(A, B):
    """Row-wise cosine similarity of A and B and its gradient with respect to A."""
    a_norm = numpy.sqrt((A * A).sum(axis=1)) + 1e-8
    b_norm = numpy.sqrt((B * B).sum(axis=1)) + 1e-8
    cos = (A * B).sum(axis=1) / (a_norm * b_norm)
    d_cos = B / (a_norm * b_norm)[:, None] - cos[:, None] * A / (a_norm**2)[:, None]
    return cos, d_cos


def lookup_candidates(kb, get_candidates_batch, mentions: Sequence[Span]) -> CandidateTable:
    """Candidates of all mentions in one call of the batch generator.

    Our default generator on our InMemoryLookupKB skips Candidate objects
    entirely and reads the KB's arrays.
    """
    if get_candidates_batch is globals()["get_candidates_batch"] and hasattr(
        kb, "lookup_aliases"
    ):
        return CandidateTable.from_kb_lookup(kb, mentions)
    if hasattr(get_candidates_batch, "arrays") and hasattr(kb, "candidates_from_arrays"):
        # entity_linker's generators (generators.py): flat arrays, no Candidate objects.
        offsets, rows, priors, _ = get_candidates_batch.arrays(kb, [m.text for m in mentions])
        return CandidateTable(kb, offsets, priors, kb.vectors[rows], kb.entity_hashes[rows],
                              rows=rows)
    return CandidateTable.from_candidates(kb, get_candidates_batch(kb, mentions))
